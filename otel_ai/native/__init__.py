"""The one compiled module, ``_native`` (``_native.c``, plain C, no dependencies).

A leaf: it imports nothing from ``otel_ai``, so both :mod:`otel_ai.otlp` (the span check and the
JSON transcoder used by validation) and :mod:`otel_ai.storage` (the trace decoder) may import it.
``pip install`` builds it with the system's C compiler; without one it is absent and the callers
fall back to pure Python (validation) or the engine decoder (storage).
"""
