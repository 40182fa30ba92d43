"""Admission: a payload enters the pipeline only if the queue has room for it, in items (spans,
data points, log records) and in body bytes, and memory allows; otherwise
:class:`~otel_ai.errors.OverloadedError` at once (503 / UNAVAILABLE; memory never grows without
bound). The counters cover everything admitted and not yet inserted or spooled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from otel_ai.errors import OverloadedError
from otel_ai.model import Payload
from otel_ai.pipeline.config import PipelineConfig
from otel_ai.pipeline.memory import MemoryGuard


class Admission:
    """Event-loop only. ``log_pending`` is how many items the write-ahead log holds (ack: spool)."""

    def __init__(
        self, config: PipelineConfig, memory: MemoryGuard | None, log_pending: Callable[[], int]
    ) -> None:
        self.config = config
        self.memory = memory
        self.log_pending = log_pending
        self.retry_after = 1.0
        self.closing = False
        self.queued_items = 0
        self.queued_bytes = 0
        self.idle: asyncio.Event | None = None  # set while nothing admitted is in flight

    def open(self) -> None:
        self.idle = asyncio.Event()
        self.idle.set()

    def admit(self, payload: Payload) -> None:
        """Count ``payload`` in, or raise :class:`OverloadedError` saying why not."""
        if self.closing or self.idle is None:
            raise OverloadedError("shutting down", retry_after=self.retry_after)
        n, size = payload.items, len(payload.body)
        cap = self.config.queue_items
        if self.queued_items and self.queued_items + n > cap:
            msg = f"pipeline queue full ({self.queued_items} of {cap} items)"
            raise OverloadedError(msg, retry_after=self.retry_after)
        if self.queued_bytes and self.queued_bytes + size > self.config.queue_bytes:
            msg = f"pipeline queue full ({self.queued_bytes} of {self.config.queue_bytes} bytes)"
            raise OverloadedError(msg, retry_after=self.retry_after)
        wal_cap = self.config.wal_max_items
        if wal_cap and (pending := self.log_pending()) and pending + n > wal_cap:
            msg = f"write-ahead log backlog full ({pending} of {wal_cap} items not yet inserted)"
            raise OverloadedError(msg, retry_after=self.retry_after)
        if (why := self.memory_refusal()) is not None:
            raise OverloadedError(why, retry_after=self.retry_after)
        self.queued_items += n
        self.queued_bytes += size
        self.idle.clear()

    def release(self, n: int, size: int) -> None:
        """``n`` items / ``size`` bytes left the pipeline (inserted, spooled or failed)."""
        self.queued_items -= n
        self.queued_bytes -= size
        if self.queued_items <= 0 and self.idle is not None:
            self.queued_items = 0
            self.idle.set()

    def memory_refusal(self) -> str | None:
        """Why to refuse for memory now: above the soft limit while ingest holds data (something
        queued or in the log); else None. With nothing in flight refusing cannot bring the memory
        down (it is held elsewhere: a model, a big query), so exports are accepted.
        """
        memory = self.memory
        if memory is None or not memory.over_soft_limit:
            return None
        if self.queued_items == 0 and self.log_pending() == 0:
            return None
        return memory.refusal_message()
