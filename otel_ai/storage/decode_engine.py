"""The "engine" decoder: ClickHouse decodes OTLP itself (first version delegates to python)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_ai.model import Payload


class EngineDecoder:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def write(self, payloads: Sequence[Payload]) -> None:
        from otel_ai.storage.writer import write_python

        write_python(self.storage, payloads)
