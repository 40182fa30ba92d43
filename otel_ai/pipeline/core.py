"""Bounded queue → per-signal batches → insert workers, with the durable spool behind them.

The pipeline is a chain of stages, like the OpenTelemetry Collector's exporterhelper senders:

1. :mod:`.admission` — ``submit`` (on the event loop, called by the receivers) admits a payload
   only if the queue has room (items and bytes) and memory allows, else 503 / UNAVAILABLE at once;
2. :mod:`.batching` — admitted payloads form per-signal batches (size, bytes, timeout, group
   commit) that the insert workers take, one ``writer.write`` per batch;
3. :mod:`.isolation` — a refused batch is bisected to the payloads refused on their own; an outage
   opens the breaker; every payload gets a typed :class:`~.outcome.Outcome`;
4. :mod:`.replay` — what an outage kept from storage is spooled (fsynced) and acknowledged, and
   replayed oldest first once storage answers (while the breaker is open, batches go straight to
   the spool).

The awaiting request is acknowledged only after its payload is inserted or fsynced to the spool
(at-least-once). With ``pipeline.ack: spool`` (the default) the write-ahead log (:mod:`.wal`) replaces stages 2
and 4: requests are acknowledged once the log has them on disk and inserted from it in big
batches through the same isolation stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from otel_ai.errors import OverloadedError
from otel_ai.model import Payload
from otel_ai.pipeline.admission import Admission
from otel_ai.pipeline.batching import Batcher, Entry
from otel_ai.pipeline.config import PipelineConfig
from otel_ai.pipeline.isolation import IsolatingWriter, Writer
from otel_ai.pipeline.memory import MemoryGuard
from otel_ai.pipeline.outcome import Outcome
from otel_ai.pipeline.replay import SpoolReplay
from otel_ai.pipeline.spool import Spool
from otel_ai.pipeline.stats import PipelineStats
from otel_ai.pipeline.wal import WriteAheadFront

log = logging.getLogger(__name__)


class Pipeline:
    """See the module docstring. ``start`` opens the spool and starts the threads."""

    def __init__(
        self,
        config: PipelineConfig,
        writer: Writer,
        *,
        registry: CollectorRegistry | None = None,
        memory: MemoryGuard | None = None,
    ) -> None:
        registry = registry or CollectorRegistry()
        self.config = config
        self.memory = memory
        self.spool = Spool(
            config.spool_dir or "./data/spool", config.spool_max_bytes, preallocate=config.spool_preallocate
        )
        self.stats = PipelineStats(registry)
        self.isolation = IsolatingWriter(writer, self.stats)
        self.replay = SpoolReplay(config, self.spool, self.isolation, self.stats)
        # ack: spool — acknowledge after the fsynced write-ahead log, insert in big batches.
        self.wal = (
            WriteAheadFront(
                config,
                self.isolation.write,
                self._wal_drained,
                lambda: self.admission.memory_refusal() is not None,
            )
            if config.ack == "spool"
            else None
        )
        self.admission = Admission(
            config, memory, lambda: self.wal.pending_items if self.wal is not None else 0
        )
        self.batcher = Batcher(config, self._send, self.admission.release)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._gauges(registry)

    @property
    def writer(self) -> Writer:
        """Where batches go (storage's :class:`TelemetryWriter` in the daemon)."""
        return self.isolation.writer

    @writer.setter
    def writer(self, writer: Writer) -> None:
        self.isolation.writer = writer

    @property
    def retry_after(self) -> float:
        """The Retry-After (seconds) sent with a refusal; the receivers set it from ``ingest``."""
        return self.admission.retry_after

    @retry_after.setter
    def retry_after(self, seconds: float) -> None:
        self.admission.retry_after = self.replay.retry_after = seconds

    @property
    def m_dropped(self) -> Counter:
        return self.stats.m_dropped

    def _gauges(self, registry: CollectorRegistry) -> None:
        admission = self.admission
        Gauge(
            "otel_ai_pipeline_queue_items",
            "Items admitted and not yet inserted or spooled",
            registry=registry,
        ).set_function(lambda: admission.queued_items)
        Gauge(
            "otel_ai_pipeline_queue_bytes",
            "Body bytes admitted and not yet inserted or spooled",
            registry=registry,
        ).set_function(lambda: admission.queued_bytes)
        Gauge(
            "otel_ai_pipeline_queue_capacity_items", "pipeline.queue_items", registry=registry
        ).set_function(lambda: self.config.queue_items)
        Gauge("otel_ai_spool_bytes", "Bytes in the disk spool", registry=registry).set_function(
            lambda: self.spool.bytes
        )
        Gauge(
            "otel_ai_spool_pending_items", "Items in the spool waiting for replay", registry=registry
        ).set_function(lambda: self.spool.pending_items)
        Gauge(
            "otel_ai_spool_torn_records", "Torn spool records detected and skipped", registry=registry
        ).set_function(lambda: self.spool.torn_records)
        Gauge(
            "otel_ai_wal_pending_items",
            "Items acknowledged through the write-ahead log and not yet inserted (ack: spool)",
            registry=registry,
        ).set_function(lambda: self.wal.pending_items if self.wal is not None else 0)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.admission.open()
        await asyncio.to_thread(self.spool.open)
        if self.wal is not None:
            await asyncio.to_thread(self.wal.open)
            self.wal.start(self._loop)
        self.batcher.start(self._loop, self.config.insert_workers if self.wal is None else 0)
        self.replay.start()

    async def shutdown(self, timeout_s: float = 15.0) -> None:
        """Flush, then wait (bounded) until every admitted payload is inserted or spooled."""
        if self._stopped or self._loop is None:
            return
        self._stopped = self.admission.closing = True
        deadline = time.monotonic() + timeout_s
        if self.wal is not None:
            await self._shutdown_wal(deadline)
        self.batcher.flush_all()
        idle = self.admission.idle
        assert idle is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(idle.wait(), timeout=max(0.1, deadline - time.monotonic()))
        if self.admission.queued_items:
            # Storage hangs: spool what no worker has picked up yet, so it survives the exit.
            for batch in self.batcher.take_waiting():
                errors = await asyncio.to_thread(self._spool_entries, batch)
                self.batcher.settle(batch, errors)
            log.warning(
                "pipeline: shutdown deadline passed with %d items still being inserted",
                self.admission.queued_items,
            )
        self.replay.stop()
        for t in self.batcher.stop_workers():
            await asyncio.to_thread(t.join, max(0.1, deadline - time.monotonic()))
        await asyncio.to_thread(self.replay.join, max(0.1, deadline - time.monotonic()))
        self.spool.close()

    async def _shutdown_wal(self, deadline: float) -> None:
        """Finish the appends, give the drainers until the deadline; the rest stays in the log."""
        assert self.wal is not None and self.admission.idle is not None
        self.wal.stop_appending()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.admission.idle.wait(), timeout=max(0.1, deadline - time.monotonic()))
        while not self.wal.drained() and not self.wal.storage_down and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not self.wal.drained():
            log.warning("pipeline: %d acknowledged items left in the write-ahead log for the next start",
                        self.wal.pending_items)  # fmt: skip
        await asyncio.to_thread(self.wal.stop, max(0.1, deadline - time.monotonic()))

    def _wal_drained(self) -> None:
        self.isolation.storage_down = False

    # -- admission (event loop) -------------------------------------------------------------------
    async def submit(self, payload: Payload) -> None:
        """Resolve once ``payload`` is inserted or durably spooled; raise if it cannot be."""
        if self._loop is None:
            raise OverloadedError("shutting down", retry_after=self.retry_after)
        self.admission.admit(payload)
        future: asyncio.Future[None] = self._loop.create_future()
        if self.wal is not None:  # ack once the write-ahead log has it on disk
            n, size = payload.items, len(payload.body)
            future.add_done_callback(lambda _f: self.admission.release(n, size))
            self.wal.submit(payload, future)
            await asyncio.shield(future)
            return
        self.batcher.add(Entry(payload, future))
        # Shielded: a client that hangs up must not cancel the insert of what it already sent.
        await asyncio.shield(future)

    # -- one batch through the senders (insert worker threads) ------------------------------------
    def _send(self, batch: list[Entry]) -> list[BaseException | None]:
        """isolation → spool for what an outage kept; one error (or None) per entry."""
        if self.isolation.storage_down:  # breaker open: do not hammer a dead storage; replay drains
            return self._spool_entries(batch)
        out: list[Outcome] = self.isolation.write([e.payload for e in batch])
        errors: list[BaseException | None] = [r.error for r in out]
        to_spool = [i for i, r in enumerate(out) if r.kind == "outage"]
        if to_spool:
            spooled = self._spool_entries([batch[i] for i in to_spool])
            for i, r in zip(to_spool, spooled, strict=True):
                errors[i] = r
        return errors

    def _spool_entries(self, entries: Sequence[Entry]) -> list[BaseException | None]:
        return self.replay.spool_payloads([e.payload for e in entries])

    def backlogged(self) -> bool:
        """A batch's worth (``batch_min_items``) waits to be inserted: the storage is the
        bottleneck now (background work such as the topology ingest job may yield to it)."""
        waiting = self.wal.pending_items if self.wal is not None else self.admission.queued_items
        return waiting >= self.config.batch_min_items

    # -- status -----------------------------------------------------------------------------------
    @property
    def totals(self) -> dict[str, int]:
        return self.stats.snapshot()

    def status(self) -> dict[str, Any]:
        totals = self.stats.snapshot()
        adm = self.admission
        return {
            "queue": {"items": adm.queued_items, "capacity_items": self.config.queue_items, "bytes": adm.queued_bytes, "capacity_bytes": self.config.queue_bytes, "batches_waiting": self.batcher.waiting()},
            "batch": {"items": self.config.batch_items, "timeout_ms": self.config.batch_timeout_ms, "insert_workers": self.config.insert_workers},
            "ack": self.config.ack,
            "wal": None if self.wal is None else {"bytes": self.wal.bytes, "pending_items": self.wal.pending_items, "appended_items": self.wal.appended_items},
            "spool": {
                "dir": str(self.spool.dir), "bytes": self.spool.bytes, "max_bytes": self.spool.max_bytes,
                "segments": self.spool.segments, "pending_records": self.spool.pending_records,
                "pending_items": self.spool.pending_items, "torn_records_skipped": self.spool.torn_records,
            },
            **totals,
            "storage_down": self.isolation.storage_down,
            "last_error": self.stats.last_error,
            "last_error_at": self.stats.last_error_at,
        }  # fmt: skip
