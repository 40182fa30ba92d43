"""The writer-boundary stand-in shared by the pipeline tests.

The writer here is the seam a real outage or engine refusal crosses: it raises the same
``StorageError`` / ``DecodeError`` the real :class:`TelemetryWriter` raises.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload
from otel_ai.pipeline.config import PipelineConfig


class RecordingWriter:
    """Stores bodies; ``down`` simulates an outage; bodies starting with b"BAD" are refused."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []
        self.started: list[list[bytes]] = []  # batches a worker took, before the gate
        self.stored: list[bytes] = []
        self.down = False
        self.gate = threading.Event()
        self.gate.set()

    def write(self, payloads: Sequence[Payload]) -> None:
        self.started.append([p.body for p in payloads])
        self.gate.wait(30)
        self.calls.append([p.body for p in payloads])
        if self.down:
            raise StorageError("connection refused", retryable=True)
        if any(p.body.startswith(b"BAD") for p in payloads):
            raise DecodeError("engine refused the batch")
        self.stored.extend(p.body for p in payloads)


def pipeline_config(tmp_path: Path, **kw: Any) -> PipelineConfig:
    base: dict[str, Any] = {
        # The in-memory batching stage (ack once inserted) these unit tests exercise; the
        # write-ahead log (the default ack point) has its own in test_wal.py (ack="spool").
        "ack": "insert",
        "spool_dir": str(tmp_path / "spool"),
        "batch_timeout_ms": 20,
        "spool_replay_interval_s": 0.05,
    }
    base.update(kw)
    return PipelineConfig(**base)


def payload(body: bytes, items: int = 10, signal: str = "traces") -> Payload:
    return Payload(signal, "protobuf", "grpc", body, items)  # type: ignore[arg-type]


async def until(cond: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")
