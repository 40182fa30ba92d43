"""OTLP receivers (gRPC :4317, HTTP :4318) — PLACEHOLDER until issue 2's receivers land."""

from __future__ import annotations

from typing import Any


class Receivers:
    def __init__(self, server_cfg: Any, ingest_cfg: Any, pipeline: Any, *, registry: Any) -> None:
        self.ready = False

    async def start(self) -> None:
        self.ready = True

    async def shutdown(self, grace_s: float = 5.0) -> None:
        self.ready = False

    def status(self) -> dict[str, Any]:
        return {}
