"""Batch writer of OTLP payloads into the telemetry tables — PLACEHOLDER until issue 2 lands."""

from __future__ import annotations

from typing import Any


class TelemetryWriter:
    def __init__(self, storage: Any, *, decoder: str = "engine", registry: Any = None) -> None:
        self.storage = storage
