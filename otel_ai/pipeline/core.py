"""Bounded queue → per-signal batches → insert workers, with the durable spool behind them.

``submit`` is called on the event loop by the receivers. It admits a payload only if the queue
(counted in items: spans, data points, log records; and in body bytes) has room, otherwise it raises
:class:`~otel_ai.errors.OverloadedError` at once (503 / UNAVAILABLE; memory never grows without
bound). Admitted payloads are grouped per signal and flushed to the worker threads when a batch
reaches ``batch_items`` or ``batch_bytes``, or ``batch_timeout_ms`` after its first payload if a worker is free
(while all are busy it keeps growing), or — group commit — while an insert worker is idle: at
once from ``batch_min_items`` (``batch_min_items_busy`` while another insert runs), else after
``batch_linger_ms`` (none while another insert runs)
(a loaded daemon forms big batches while the workers are busy; a lightly loaded one does not
hold requests for the whole timeout, nor insert each request on its own). A worker makes ONE
``writer.write`` call per batch. The awaiting request is acknowledged only after its payload is
inserted or fsynced to the spool (at-least-once):

* retryable ``StorageError`` (an outage) → the batch is spooled and acked; until a replay
  succeeds, new batches go to the spool too (a circuit breaker: a dead storage is not hammered);
  the replay thread drains the spool oldest first once storage answers, while live batches go
  straight to storage again;
* ``DecodeError`` (the engine refused the content) → the batch is bisected to find the payloads
  it refuses; those fail with 400 / INVALID_ARGUMENT, the others are written; a non-retryable
  ``StorageError`` (storage refuses this content: not an outage) is bisected the same way and
  fails with 500 / INTERNAL, since spooling it would block the replay forever;
* spool full → the requests fail with 503 / UNAVAILABLE (the sender keeps the data and retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from otel_ai.errors import DecodeError, OtelAiError, OverloadedError, StorageError
from otel_ai.model import SIGNALS, Payload, Signal
from otel_ai.pipeline.config import PipelineConfig
from otel_ai.pipeline.memory import MemoryGuard
from otel_ai.pipeline.spool import Spool
from otel_ai.pipeline.wal import WriteAheadFront

log = logging.getLogger(__name__)


class Writer(Protocol):
    def write(self, payloads: Sequence[Payload]) -> None: ...


@dataclass(slots=True)
class _Entry:
    payload: Payload
    future: asyncio.Future[None]


_SPOOL = object()  # marker: this payload could not be written; spool it


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
        self.config = config
        self.writer = writer
        self.memory = memory
        self.spool = Spool(config.spool_dir or "./data/spool", config.spool_max_bytes)
        self.retry_after = 1.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffers: dict[Signal, list[_Entry]] = {s: [] for s in SIGNALS}
        self._buffer_items: dict[Signal, int] = dict.fromkeys(SIGNALS, 0)
        self._buffer_bytes: dict[Signal, int] = dict.fromkeys(SIGNALS, 0)
        self._timers: dict[Signal, asyncio.TimerHandle | None] = dict.fromkeys(SIGNALS)
        self._lingers: dict[Signal, asyncio.TimerHandle | None] = dict.fromkeys(SIGNALS)
        self._queued_items = 0
        self._queued_bytes = 0
        self._inflight_batches = 0  # flushed to the workers and not yet settled (loop thread only)
        self._idle: asyncio.Event | None = None
        self._work: queue.Queue[list[_Entry] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._replay_wake = threading.Event()
        self._closing = False
        self._stopped = False
        # Set on a retryable StorageError, cleared by the first successful replay: while set, new
        # batches go straight to the spool (a circuit breaker in front of a dead storage).
        self._storage_down = False
        self.totals = {
            "inserted_items": 0,
            "inserted_batches": 0,
            "spooled_items": 0,
            "replayed_items": 0,
            "failed_items": 0,
        }
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._lock = threading.Lock()
        # ack: spool — acknowledge after the fsynced write-ahead log, insert in big batches.
        self.wal = (
            WriteAheadFront(
                config, self._wal_write, self._wal_drained, lambda: self._memory_refusal() is not None
            )
            if config.ack == "spool"
            else None
        )
        self._metrics(registry or CollectorRegistry())

    def _metrics(self, registry: CollectorRegistry) -> None:
        self.m_dropped = Counter(
            "otelai_pipeline_dropped_items",
            "Items accepted from the network and then dropped, by reason",
            ["reason"],
            registry=registry,
        )
        self.m_items = Counter(
            "otelai_pipeline_items",
            "Items leaving the pipeline, by signal and outcome",
            ["signal", "outcome"],
            registry=registry,
        )
        self.m_insert = Histogram(
            "otelai_insert_latency_seconds", "One writer.write call (a batch)", ["signal"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        Gauge(
            "otelai_pipeline_queue_items", "Items admitted and not yet inserted or spooled", registry=registry
        ).set_function(lambda: self._queued_items)
        Gauge(
            "otelai_pipeline_queue_bytes",
            "Body bytes admitted and not yet inserted or spooled",
            registry=registry,
        ).set_function(lambda: self._queued_bytes)
        Gauge("otelai_pipeline_queue_capacity_items", "pipeline.queue_items", registry=registry).set_function(
            lambda: self.config.queue_items
        )
        Gauge("otelai_spool_bytes", "Bytes in the disk spool", registry=registry).set_function(
            lambda: self.spool.bytes
        )
        Gauge(
            "otelai_spool_pending_items", "Items in the spool waiting for replay", registry=registry
        ).set_function(lambda: self.spool.pending_items)
        Gauge(
            "otelai_spool_torn_records", "Torn spool records detected and skipped", registry=registry
        ).set_function(lambda: self.spool.torn_records)
        Gauge(
            "otelai_wal_pending_items",
            "Items acknowledged through the write-ahead log and not yet inserted (ack: spool)",
            registry=registry,
        ).set_function(lambda: self.wal.pending_items if self.wal is not None else 0)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        await asyncio.to_thread(self.spool.open)
        if self.wal is not None:
            await asyncio.to_thread(self.wal.open)
            self.wal.start(self._loop)
        for i in range(self.config.insert_workers if self.wal is None else 0):
            t = threading.Thread(target=self._worker, name=f"insert-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._replayer, name="spool-replay", daemon=True)
        t.start()
        self._replay_thread = t

    async def shutdown(self, timeout_s: float = 15.0) -> None:
        """Flush, then wait (bounded) until every admitted payload is inserted or spooled."""
        if self._stopped or self._loop is None:
            return
        self._stopped = self._closing = True
        deadline = time.monotonic() + timeout_s
        if self.wal is not None:
            await self._shutdown_wal(deadline)
        for signal in SIGNALS:
            self._flush(signal)
        assert self._idle is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=max(0.1, deadline - time.monotonic()))
        if self._queued_items:
            # Storage hangs: spool what no worker has picked up yet, so it survives the exit.
            leftovers: list[list[_Entry]] = []
            with contextlib.suppress(queue.Empty):
                while True:
                    batch = self._work.get_nowait()
                    if batch:
                        leftovers.append(batch)
            for batch in leftovers:
                errors = await asyncio.to_thread(self._spool_entries, batch)
                self._settle(batch, errors)
            log.warning(
                "pipeline: shutdown deadline passed with %d items still being inserted", self._queued_items
            )
        self._stop.set()
        self._replay_wake.set()
        for _ in self._threads:
            self._work.put(None)
        for t in [*self._threads, self._replay_thread]:
            await asyncio.to_thread(t.join, max(0.1, deadline - time.monotonic()))
        self.spool.close()

    # -- admission (event loop) -------------------------------------------------------------------
    async def _shutdown_wal(self, deadline: float) -> None:
        """Finish the appends, give the drainers until the deadline; the rest stays in the log."""
        assert self.wal is not None and self._idle is not None
        self.wal.stop_appending()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=max(0.1, deadline - time.monotonic()))
        while not self.wal.drained() and not self.wal.storage_down and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not self.wal.drained():
            log.warning("pipeline: %d acknowledged items left in the write-ahead log for the next start",
                        self.wal.pending_items)  # fmt: skip
        await asyncio.to_thread(self.wal.stop, max(0.1, deadline - time.monotonic()))

    def _wal_write(self, payloads: Sequence[Payload]) -> list[Any]:
        out: list[Any] = [None] * len(payloads)
        self._write_isolating(payloads, out, 0)
        return out

    def _wal_drained(self) -> None:
        self._storage_down = False

    def _memory_refusal(self) -> str | None:
        """Why to refuse for memory now: above the soft limit while ingest holds data (something
        queued or in the log); else None. With nothing in flight refusing cannot bring the memory
        down (it is held elsewhere: a model, a big query), so exports are accepted.
        """
        memory = self.memory
        if memory is None or not memory.over_soft_limit:
            return None
        if self._queued_items == 0 and (self.wal is None or self.wal.pending_items == 0):
            return None
        return memory.refusal_message()

    def _release(self, n: int, size: int) -> None:
        self._queued_items -= n
        self._queued_bytes -= size
        if self._queued_items <= 0 and self._idle is not None:
            self._queued_items = 0
            self._idle.set()

    async def submit(self, payload: Payload) -> None:
        """Resolve once ``payload`` is inserted or durably spooled; raise if it cannot be."""
        if self._closing or self._loop is None:
            raise OverloadedError("shutting down", retry_after=self.retry_after)
        n, size = payload.items, len(payload.body)
        cap = self.config.queue_items
        if self._queued_items and self._queued_items + n > cap:
            msg = f"pipeline queue full ({self._queued_items} of {cap} items)"
            raise OverloadedError(msg, retry_after=self.retry_after)
        if self._queued_bytes and self._queued_bytes + size > self.config.queue_bytes:
            msg = f"pipeline queue full ({self._queued_bytes} of {self.config.queue_bytes} bytes)"
            raise OverloadedError(msg, retry_after=self.retry_after)
        if (why := self._memory_refusal()) is not None:
            raise OverloadedError(why, retry_after=self.retry_after)
        future: asyncio.Future[None] = self._loop.create_future()
        self._queued_items += n
        self._queued_bytes += size
        assert self._idle is not None
        self._idle.clear()
        if self.wal is not None:  # ack once the write-ahead log has it on disk
            future.add_done_callback(lambda _f: self._release(n, size))
            self.wal.submit(payload, future)
            await asyncio.shield(future)
            return
        signal = payload.signal
        self._buffers[signal].append(_Entry(payload, future))
        self._buffer_items[signal] += n
        self._buffer_bytes[signal] += size
        if (
            self._buffer_items[signal] >= self.config.batch_items
            or self._buffer_bytes[signal] >= self.config.batch_bytes
        ):
            self._flush(signal)
        else:
            if self._timers[signal] is None:
                self._timers[signal] = self._loop.call_later(
                    self.config.batch_timeout_ms / 1000, self._timeout, signal
                )
            self._maybe_early(signal)
        # Shielded: a client that hangs up must not cancel the insert of what it already sent.
        await asyncio.shield(future)

    def _maybe_early(self, signal: Signal) -> None:
        """Group commit: while an insert worker is idle, do not hold a batch for the whole timeout.

        With no insert running, at ``batch_min_items`` the batch goes at once; a smaller one
        lingers ``batch_linger_ms`` for more payloads to join (so a light load does not turn into
        one insert per request). While another insert runs, the idle worker waits for
        ``batch_min_items_busy`` (or ``batch_timeout_ms``): under load, batches of what 64
        senders have in flight split in two small inserts cost ~20 % more CPU per span than
        full ones (each INSERT's fixed cost, and more parts to merge).
        """
        if not self._buffers[signal] or self._inflight_batches >= self.config.insert_workers:
            return
        cfg = self.config
        busy = self._inflight_batches > 0
        if self._buffer_items[signal] >= (
            max(cfg.batch_min_items_busy, cfg.batch_min_items) if busy else cfg.batch_min_items
        ):
            self._flush(signal)
        elif busy:
            return  # another insert runs: grow until batch_min_items_busy or batch_timeout_ms
        elif self._lingers[signal] is None:
            assert self._loop is not None
            self._lingers[signal] = self._loop.call_later(
                self.config.batch_linger_ms / 1000, self._linger_done, signal
            )

    def _timeout(self, signal: Signal) -> None:
        """``batch_timeout_ms`` passed: flush if a worker can take the batch now.

        While every worker is busy the batch keeps growing instead (up to ``batch_items``) and
        the worker that frees up takes all of it (``_settle``): cutting it on the clock would
        queue small batches behind the busy workers, and each insert has a fixed cost (query
        analysis, ~0.15 s of CPU for the engine decoder) that small batches pay again and again.
        """
        self._timers[signal] = None
        if self._inflight_batches < self.config.insert_workers:
            self._flush(signal)

    def _linger_done(self, signal: Signal) -> None:
        self._lingers[signal] = None
        if self._inflight_batches == 0:
            self._flush(signal)
        # else: an insert started meanwhile — _maybe_early's busy rule (or the batch timeout)
        # decides, and the worker that frees up next calls _maybe_early from _settle

    def _flush(self, signal: Signal) -> None:
        for timers in (self._timers, self._lingers):
            timer = timers[signal]
            if timer is not None:
                timer.cancel()
                timers[signal] = None
        batch = self._buffers[signal]
        if batch:
            self._buffers[signal] = []
            self._buffer_items[signal] = 0
            self._buffer_bytes[signal] = 0
            self._inflight_batches += 1
            self._work.put(batch)

    def _settle(self, batch: list[_Entry], errors: Sequence[BaseException | None]) -> None:
        self._inflight_batches -= 1
        for entry, err in zip(batch, errors, strict=True):
            self._queued_items -= entry.payload.items
            self._queued_bytes -= len(entry.payload.body)
            if entry.future.done():
                continue
            if err is None:
                entry.future.set_result(None)
            else:
                entry.future.set_exception(err)
                entry.future.exception()  # mark retrieved: a hung-up client never awaits it
        if self._queued_items <= 0 and self._idle is not None:
            self._queued_items = 0
            self._idle.set()
        for signal in SIGNALS:  # a worker is free
            self._maybe_early(signal)

    # -- workers (threads) ------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            batch = self._work.get()
            if batch is None:
                return
            try:
                errors = self._process(batch)
            except BaseException as exc:  # never leave a request hanging
                log.exception("pipeline worker failed")
                errors = [OtelAiError(f"internal error: {exc}")] * len(batch)
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # loop closed: shutdown gave up waiting on us
                self._loop.call_soon_threadsafe(self._settle, batch, errors)

    def _process(self, batch: list[_Entry]) -> list[BaseException | None]:
        if self._storage_down:  # circuit open: do not hammer a dead storage; replay will drain the spool
            return self._spool_entries(batch)
        payloads = [e.payload for e in batch]
        out: list[Any] = [None] * len(payloads)
        self._write_isolating(payloads, out, 0)
        to_spool = [i for i, r in enumerate(out) if r is _SPOOL]
        if to_spool:
            spooled = self._spool_entries([batch[i] for i in to_spool])
            for i, r in zip(to_spool, spooled, strict=True):
                out[i] = r
        return out

    def _write_isolating(self, payloads: Sequence[Payload], out: list[Any], offset: int) -> None:
        """Write; on DecodeError bisect to find the refused payloads; on StorageError mark _SPOOL."""
        if any(r is _SPOOL for r in out):  # storage already failed in this batch: do not hammer it
            out[offset : offset + len(payloads)] = [_SPOOL] * len(payloads)
            return
        try:
            self._timed_write(payloads)
            with self._lock:
                self.totals["inserted_batches"] += 1
                self.totals["inserted_items"] += sum(p.items for p in payloads)
            self.m_items.labels(payloads[0].signal, "inserted").inc(sum(p.items for p in payloads))
        except StorageError as exc:
            if exc.retryable:
                self._storage_down = True
                self._error(f"storage: {exc.message}")
                out[offset : offset + len(payloads)] = [_SPOOL] * len(payloads)
            else:  # storage refused this content (not an outage): isolate it like an engine refusal
                self._refused(payloads, out, offset, exc, "storage_rejected")
        except DecodeError as exc:
            self._refused(payloads, out, offset, exc, "invalid")
        except Exception as exc:  # a bug, not an outage: fail the requests (500), do not spool
            log.exception("writer failed unexpectedly")
            self._error(f"writer: {exc!r}")
            out[offset : offset + len(payloads)] = [
                OtelAiError(f"internal error while inserting: {exc!r}")
            ] * len(payloads)

    def _refused(
        self, payloads: Sequence[Payload], out: list[Any], offset: int, exc: OtelAiError, reason: str
    ) -> None:
        """Bisect a refused batch down to the payloads refused on their own; write the rest."""
        if len(payloads) == 1:
            out[offset] = exc
            self.m_dropped.labels(reason).inc(payloads[0].items)
            self._error(f"{reason}: {exc.message}")
            with self._lock:
                self.totals["failed_items"] += payloads[0].items
            return
        mid = len(payloads) // 2
        self._write_isolating(payloads[:mid], out, offset)
        self._write_isolating(payloads[mid:], out, offset + mid)

    def _timed_write(self, payloads: Sequence[Payload]) -> None:
        t0 = time.perf_counter()
        self.writer.write(payloads)
        self.m_insert.labels(payloads[0].signal).observe(time.perf_counter() - t0)

    def _spool_entries(self, entries: Sequence[_Entry]) -> list[BaseException | None]:
        payloads = [e.payload for e in entries]
        try:
            self.spool.append(payloads)
        except (OverloadedError, StorageError) as exc:
            self._error(exc.message)
            if not isinstance(exc, OverloadedError):
                exc = OverloadedError(exc.message, retry_after=self.retry_after)
            return [exc] * len(entries)
        items = sum(p.items for p in payloads)
        with self._lock:
            self.totals["spooled_items"] += items
        self.m_items.labels(payloads[0].signal, "spooled").inc(items)
        self._replay_wake.set()
        return [None] * len(entries)

    def _error(self, message: str) -> None:
        with self._lock:
            if message != self.last_error:
                log.warning("pipeline: %s", message)
            self.last_error, self.last_error_at = message, time.time()

    # -- replay (thread) ------------------------------------------------------------------------
    def _replayer(self) -> None:
        interval = self.config.spool_replay_interval_s
        while not self._stop.is_set():
            ok = True
            try:
                while not self._stop.is_set() and self.spool.has_pending():
                    if not self._replay_one():
                        ok = False
                        break
            except Exception:
                log.exception("spool replay failed")
                ok = False
            if ok:
                self._replay_wake.wait(interval)
                self._replay_wake.clear()
            else:
                self._stop.wait(interval)

    def _replay_one(self) -> bool:
        records = self.spool.read_batch(self.config.batch_items)
        if not records:
            return True
        payloads = [r.payload for r in records]
        out: list[Any] = [None] * len(payloads)
        self._write_isolating(payloads, out, 0)
        if any(r is _SPOOL or (r is not None and not isinstance(r, DecodeError | StorageError)) for r in out):
            return False  # storage still down; keep the records, retry after the interval
        # Records refused on their own (DecodeError, non-retryable StorageError) are dropped and
        # counted (otelai_pipeline_dropped_items_total): retrying them would block the spool forever.
        self.spool.commit(records)
        self._storage_down = False  # storage answers again: live batches go straight to it
        items = sum(p.items for p, r in zip(payloads, out, strict=True) if r is None)
        with self._lock:
            self.totals["replayed_items"] += items
        self.m_items.labels(payloads[0].signal, "replayed").inc(items)
        return True

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            totals = dict(self.totals)
        return {
            "queue": {"items": self._queued_items, "capacity_items": self.config.queue_items, "bytes": self._queued_bytes, "capacity_bytes": self.config.queue_bytes, "batches_waiting": self._work.qsize()},
            "batch": {"items": self.config.batch_items, "timeout_ms": self.config.batch_timeout_ms, "insert_workers": self.config.insert_workers},
            "ack": self.config.ack,
            "wal": None if self.wal is None else {"bytes": self.wal.bytes, "pending_items": self.wal.pending_items, "appended_items": self.wal.appended_items},
            "spool": {
                "dir": str(self.spool.dir), "bytes": self.spool.bytes, "max_bytes": self.spool.max_bytes,
                "segments": self.spool.segments, "pending_records": self.spool.pending_records,
                "pending_items": self.spool.pending_items, "torn_records_skipped": self.spool.torn_records,
            },
            **totals,
            "storage_down": self._storage_down,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }  # fmt: skip
