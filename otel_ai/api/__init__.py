"""HTTP API (FastAPI). Sits on top: nothing else in the package imports it."""

from otel_ai.api.app import create_app
from otel_ai.api.context import AppContext

__all__ = ["AppContext", "create_app"]
