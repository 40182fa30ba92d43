"""The ``api`` section: the HTTP API's token, CORS origins and query limits."""

from __future__ import annotations

from pydantic import Field

from otel_ai.sections import Section


class ApiConfig(Section):
    # Optional bearer token required on /api/*. Never logged or returned.
    token: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_window_days: int = Field(default=31, gt=0)
