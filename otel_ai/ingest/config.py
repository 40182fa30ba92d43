"""The ``ingest`` section: what the OTLP receivers accept."""

from __future__ import annotations

from pydantic import Field

from otel_ai.sections import Section


class IngestConfig(Section):
    # OTLP spec v1.11.0: RECOMMENDED 64 MiB limit, enforced after decompression; over → 413.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    grpc_max_workers: int = Field(default=8, ge=1)
    # Retry hint sent with 503 / UNAVAILABLE.
    retry_after_s: int = Field(default=2, ge=1)
