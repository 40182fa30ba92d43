"""The ``api`` section: the HTTP API's token, CORS origins and query limits."""

from __future__ import annotations

from pydantic import Field, model_validator

from otel_ai.sections import Section


class ApiConfig(Section):
    # Optional bearer token required on /api/*. Never logged or returned.
    token: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_window_days: int = Field(default=31, gt=0)
    # With a token: also require it on /metrics (Prometheus then sends it) and on /docs,
    # /redoc, /openapi.json. Off: those stay open like /healthz and /readyz.
    protect_metrics: bool = False
    protect_docs: bool = False
    # HTTPS for the API (PEM files; both or neither).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self
