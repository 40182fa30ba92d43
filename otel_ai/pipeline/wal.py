"""Write-ahead acknowledgement (``pipeline.ack: spool``): ack after fsync, insert in big batches.

With ``ack: insert`` a request is acknowledged once its rows are in ClickHouse, so
a batch can hold only what the senders have in flight (32 senders x 512 spans ≈ 16k spans), and
every insert pays the engine's fixed cost (query analysis, one part per table and view, merges
later). With ``ack: spool`` a request is acknowledged as soon as it is appended to a per-signal
write-ahead log and fsynced (OTLP allows acking once data is durable; docs/decisions/0004-at-least-once.md), and
one drainer per signal inserts from the log in batches of up to ``batch_items``/``batch_bytes``: the batch size no
longer depends on the senders, and while an insert runs the next batch accumulates on disk.

* Durable before the ack: a crash loses nothing acknowledged; the drainers replay the log at
  start (at-least-once — a crash between an insert and the cursor update inserts that batch twice).
* Bounded: pending appends in memory are bounded by ``queue_items``/``queue_bytes``, the log by
  ``spool_max_bytes`` per signal; past either the receivers answer 503 / UNAVAILABLE.
* Storage outage: the drainer keeps the records and retries every ``spool_replay_interval_s``.
* Content the engine refuses on its own (after ``validate`` accepted it: rare) cannot be reported
  to a sender that was already acknowledged: it is dropped and counted
  (``otel_ai_pipeline_dropped_items_total``), never retried forever.
* The trade-off: rows become queryable a batch after the ack, not at the ack; ``wal_max_items``
  bounds the backlog (503 past it) so that delay stays bounded under overload.

The default ack point since 2026-12-01: the batch size no longer depends on the senders.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from otel_ai.errors import OverloadedError, StorageError
from otel_ai.model import SIGNALS, Payload, Signal
from otel_ai.pipeline.config import PipelineConfig
from otel_ai.pipeline.outcome import Outcome
from otel_ai.pipeline.spool import Spool, SpoolRecord

log = logging.getLogger(__name__)

# A batch being inserted from the log: its records and the insert's per-payload results.
_InFlight = tuple[list[SpoolRecord], Future[list[Outcome]]]

# One append round takes at most this many requests / body bytes (one write + one fsync per
# signal); the bytes bound keeps the round's joined copy small.
_GROUP = 512
_GROUP_BYTES = 8 * 1024 * 1024


class WriteAheadFront:
    """Appends admitted payloads to per-signal logs (group commit) and drains them to storage.

    ``write_batch(payloads) -> outcomes`` inserts one batch and returns one
    :class:`~otel_ai.pipeline.outcome.Outcome` per payload: written, refused on its own (dropped),
    or not written and to be kept (an outage).
    """

    def __init__(
        self,
        config: PipelineConfig,
        write_batch: Callable[[Sequence[Payload]], list[Outcome]],
        on_drained: Callable[[], None],
        under_memory_pressure: Callable[[], bool] = lambda: False,
    ) -> None:
        self.config = config
        self.under_memory_pressure = under_memory_pressure
        self.write_batch = write_batch
        self.on_drained = on_drained  # a batch was written: storage answers
        root = Path(config.spool_dir or "./data/spool") / "wal"
        self.logs: dict[Signal, Spool] = {
            s: Spool(root / s, config.spool_max_bytes, preallocate=config.spool_preallocate) for s in SIGNALS
        }
        self._appends: queue.Queue[tuple[Payload, asyncio.Future[None]] | None] = queue.Queue()
        self._wake = {s: threading.Event() for s in SIGNALS}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.storage_down = False
        self.appended_items = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> None:
        for spool in self.logs.values():
            spool.open()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        threads = [threading.Thread(target=self._appender, name="wal-append", daemon=True)]
        threads += [
            threading.Thread(target=self._drainer, args=(s,), name=f"wal-drain-{s}", daemon=True)
            for s in SIGNALS
        ]
        for t in threads:
            t.start()
        self._threads = threads

    def stop_appending(self) -> None:
        self._appends.put(None)

    def drained(self) -> bool:
        return not any(spool.has_pending() for spool in self.logs.values())

    def stop(self, timeout_s: float) -> None:
        """Stop the threads (what is still in the logs is replayed by the next start)."""
        self._stop.set()
        for ev in self._wake.values():
            ev.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        for spool in self.logs.values():
            spool.close()

    @property
    def pending_items(self) -> int:
        return sum(s.pending_items for s in self.logs.values())

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.logs.values())

    # -- append (group commit) ----------------------------------------------------------------
    def submit(self, payload: Payload, future: asyncio.Future[None]) -> None:
        self._appends.put((payload, future))

    def _appender(self) -> None:
        while True:
            first = self._appends.get()
            if first is None:
                return
            group = [first]
            size = len(first[0].body)
            with contextlib.suppress(queue.Empty):
                while len(group) < _GROUP and size < _GROUP_BYTES:
                    nxt = self._appends.get_nowait()
                    if nxt is None:
                        self._appends.put(None)  # stop after this round
                        break
                    group.append(nxt)
                    size += len(nxt[0].body)
            results: list[BaseException | None] = [None] * len(group)
            for signal in SIGNALS:
                idx = [i for i, (p, _) in enumerate(group) if p.signal == signal]
                if not idx:
                    continue
                try:
                    self.logs[signal].append([group[i][0] for i in idx])
                    self.appended_items += sum(group[i][0].items for i in idx)
                    self._wake[signal].set()
                except (OverloadedError, StorageError) as exc:
                    err: BaseException = exc
                    if not isinstance(exc, OverloadedError):
                        err = OverloadedError(f"write-ahead log: {exc.message}", retry_after=1.0)
                    for i in idx:
                        results[i] = err
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # loop closed at shutdown
                self._loop.call_soon_threadsafe(_settle, group, results)

    # -- drain ----------------------------------------------------------------------------------
    def _drainer(self, signal: Signal) -> None:
        """Insert the log's records in order, up to ``insert_workers`` batches at a time.

        When a full batch (``batch_items``) waits behind the one being inserted, it is read ahead
        and inserted beside it; commits advance the log's cursor strictly in order, so a crash
        replays from the oldest batch not yet committed (at least once, as for any record
        inserted but not yet committed).
        """
        spool = self.logs[signal]
        width = max(1, int(self.config.insert_workers))
        pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"wal-insert-{signal}")
        inflight: collections.deque[_InFlight] = collections.deque()
        try:
            while not self._stop.is_set():
                while len(inflight) < width and (batch := self._next_batch(signal, inflight)):
                    inflight.append((batch, pool.submit(self.write_batch, [r.payload for r in batch])))
                # wait for the oldest batch, looking now and then for a full batch to read ahead
                if not inflight or not wait([inflight[0][1]], timeout=0.05).done:
                    continue
                records, fut = inflight.popleft()
                try:
                    ok = self._settle_batch(spool, records, fut.result())
                except Exception:
                    log.exception("write-ahead drain of %s failed", signal)
                    ok = False
                if not ok:  # an outage: let the rest finish, commit none of it, retry from the cursor
                    for _, later in inflight:
                        with contextlib.suppress(Exception):
                            later.result()
                    inflight.clear()
                    self._stop.wait(self.config.spool_replay_interval_s)
        finally:
            # stopping: finish what is in flight and commit it in order while it succeeds
            committing = True
            for records, later in inflight:
                try:
                    out = later.result()
                except Exception:
                    committing = False
                    continue
                committing = committing and self._settle_batch(spool, records, out)
            pool.shutdown(wait=True)

    def _next_batch(self, signal: Signal, inflight: collections.deque[_InFlight]) -> list[SpoolRecord]:
        """The next batch to insert, or [] when there is none worth starting now."""
        spool, cfg = self.logs[signal], self.config
        if self._stop.is_set():
            return []
        if inflight:
            # read ahead only when a full batch waits: a small one would only add another
            # fixed-cost insert (and parts to merge) beside the one running; and not while the
            # process is above its memory soft limit (one insert at a time holds half the memory)
            if self.under_memory_pressure():
                return []
            queued = sum(r.payload.items for records, _ in inflight for r in records)
            if spool.pending_items - queued < cfg.batch_items:
                return []
            return spool.read_batch(cfg.batch_items, cfg.batch_bytes, after=inflight[-1][0][-1])
        if not spool.has_pending():
            self._wake[signal].wait(1.0)
            self._wake[signal].clear()
            return []
        if spool.pending_items < cfg.batch_min_items:
            # A light load: let a few more requests join (group commit), then go.
            self._stop.wait(cfg.batch_timeout_ms / 1000)
        if self.under_memory_pressure():  # an insert holds a few times its batch: halve it
            return spool.read_batch(max(1, cfg.batch_items // 2), max(1, cfg.batch_bytes // 2))
        return spool.read_batch(cfg.batch_items, cfg.batch_bytes)

    def _settle_batch(self, spool: Spool, records: list[SpoolRecord], out: list[Outcome]) -> bool:
        if any(r.retry for r in out):
            self.storage_down = True
            return False  # an outage: keep the records, retry after the interval
        # Records refused on their own (DecodeError, non-retryable StorageError) were counted as
        # dropped by the writer side; retrying them would block the log forever.
        spool.commit(records)
        self.storage_down = False
        self.on_drained()
        return True


def _settle(
    group: Sequence[tuple[Payload, asyncio.Future[None]]], results: Sequence[BaseException | None]
) -> None:
    for (_, future), err in zip(group, results, strict=True):
        if future.done():
            continue
        if err is None:
            future.set_result(None)
        else:
            future.set_exception(err)
            future.exception()  # mark retrieved: a hung-up client never awaits it
