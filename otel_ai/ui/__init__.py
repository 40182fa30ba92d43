"""The web UI: static ES modules and CSS served by the daemon at ``/`` (no build step, no CDN)."""

from __future__ import annotations

from otel_ai.ui.routes import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router"]
