"""The ``ingest`` section: what the OTLP receivers accept."""

from __future__ import annotations

from pydantic import Field, model_validator

from otel_ai.sections import Section


class IngestConfig(Section):
    # OTLP spec v1.11.0: RECOMMENDED 64 MiB limit, enforced after decompression; over → 413.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    grpc_max_workers: int = Field(default=8, ge=1)
    # Retry hint sent with 503 / UNAVAILABLE.
    retry_after_s: int = Field(default=2, ge=1)
    # What is accepted, checked before the ack (otel_ai/otlp/limits.py, docs/reliability.md):
    # attributes per resource / scope / span / event / link / log record / data point, ...
    max_attributes: int = Field(default=8192, ge=1)
    # ... encoded bytes of one attribute (key and value), ...
    max_attribute_bytes: int = Field(default=1024 * 1024, ge=64)
    # ... and resource + scope bytes repeated over all rows of a request, per byte of the request.
    max_resource_amplification: int = Field(default=64, ge=1)
    # TLS on both receivers (PEM files; both or neither), like the Collector's receiver `tls`.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Optional bearer token the receivers require (`Authorization: Bearer <token>` header or gRPC
    # metadata, like the Collector's bearertokenauth): 401 / UNAUTHENTICATED without it.
    token: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> IngestConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self
