"""HTTP API (FastAPI). Sits on top: nothing else in the package imports it.

The names are loaded on first use, so importing a light submodule (``otel_ai.api.config``, which
the configuration composes) does not import FastAPI and every route: the CLI stays quick to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_ai.api.app import create_app
    from otel_ai.api.context import AppContext

__all__ = ["AppContext", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from otel_ai.api.app import create_app

        return create_app
    if name == "AppContext":
        from otel_ai.api.context import AppContext

        return AppContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
