"""The one compiled part: the native trace decoder (``otel_ai/native/_native.c``, plain C, no deps).

Metadata lives in pyproject.toml; this file only declares the extension.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otel_ai.native._native",
            ["otel_ai/native/_native.c"],
            optional=True,  # without a C compiler the daemon uses the engine decoder
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
