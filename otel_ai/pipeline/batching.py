"""Per-signal batches and the insert workers that take them.

Admitted payloads are grouped per signal and flushed to the worker threads when a batch reaches
``batch_items`` or ``batch_bytes``, or ``batch_timeout_ms`` after its first payload if a worker is
free (while all are busy it keeps growing), or — group commit — while an insert worker is idle: at
once from ``batch_min_items`` (``batch_min_items_busy`` while another insert runs), else after
``batch_linger_ms`` (none while another insert runs). A loaded daemon forms big batches while the
workers are busy; a lightly loaded one does not hold requests for the whole timeout, nor insert
each request on its own. A worker hands ONE batch to ``send`` and settles each payload's future
with the error ``send`` returns for it (None: acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from otel_ai.errors import OtelAiError
from otel_ai.model import SIGNALS, Payload, Signal
from otel_ai.pipeline.config import PipelineConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Entry:
    """An admitted payload and the future its request awaits."""

    payload: Payload
    future: asyncio.Future[None]


Send = Callable[[list[Entry]], list[BaseException | None]]


class Batcher:
    """See the module docstring. ``add``/``flush``/``settle`` run on the event loop; ``send`` on
    the workers. ``released(n, size)`` is told when a payload leaves (admission's counters)."""

    def __init__(self, config: PipelineConfig, send: Send, released: Callable[[int, int], None]) -> None:
        self.config = config
        self.send = send
        self.released = released
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffers: dict[Signal, list[Entry]] = {s: [] for s in SIGNALS}
        self._buffer_items: dict[Signal, int] = dict.fromkeys(SIGNALS, 0)
        self._buffer_bytes: dict[Signal, int] = dict.fromkeys(SIGNALS, 0)
        self._timers: dict[Signal, asyncio.TimerHandle | None] = dict.fromkeys(SIGNALS)
        self._lingers: dict[Signal, asyncio.TimerHandle | None] = dict.fromkeys(SIGNALS)
        self._inflight_batches = 0  # flushed to the workers and not yet settled (loop thread only)
        self._work: queue.Queue[list[Entry] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop, workers: int) -> None:
        self._loop = loop
        for i in range(workers):
            t = threading.Thread(target=self._worker, name=f"insert-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def flush_all(self) -> None:
        for signal in SIGNALS:
            self.flush(signal)

    def take_waiting(self) -> list[list[Entry]]:
        """The batches no worker has picked up yet (shutdown: they go to the spool instead)."""
        leftovers: list[list[Entry]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                batch = self._work.get_nowait()
                if batch:
                    leftovers.append(batch)
        return leftovers

    def waiting(self) -> int:
        return self._work.qsize()

    def stop_workers(self) -> list[threading.Thread]:
        """Tell every worker to exit after its batch; returns the threads to join."""
        for _ in self._threads:
            self._work.put(None)
        return list(self._threads)

    # -- batching (event loop) ------------------------------------------------------------------
    def add(self, entry: Entry) -> None:
        assert self._loop is not None
        signal = entry.payload.signal
        self._buffers[signal].append(entry)
        self._buffer_items[signal] += entry.payload.items
        self._buffer_bytes[signal] += len(entry.payload.body)
        if (
            self._buffer_items[signal] >= self.config.batch_items
            or self._buffer_bytes[signal] >= self.config.batch_bytes
        ):
            self.flush(signal)
        else:
            if self._timers[signal] is None:
                self._timers[signal] = self._loop.call_later(
                    self.config.batch_timeout_ms / 1000, self._timeout, signal
                )
            self._maybe_early(signal)

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
            self.flush(signal)
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
        the worker that frees up takes all of it (``settle``): cutting it on the clock would
        queue small batches behind the busy workers, and each insert has a fixed cost (query
        analysis, ~0.15 s of CPU for the engine decoder) that small batches pay again and again.
        """
        self._timers[signal] = None
        if self._inflight_batches < self.config.insert_workers:
            self.flush(signal)

    def _linger_done(self, signal: Signal) -> None:
        self._lingers[signal] = None
        if self._inflight_batches == 0:
            self.flush(signal)
        # else: an insert started meanwhile — _maybe_early's busy rule (or the batch timeout)
        # decides, and the worker that frees up next calls _maybe_early from settle

    def flush(self, signal: Signal) -> None:
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

    def settle(self, batch: list[Entry], errors: Sequence[BaseException | None]) -> None:
        """Resolve each request of a finished batch; a worker is free again."""
        self._inflight_batches -= 1
        for entry, err in zip(batch, errors, strict=True):
            self.released(entry.payload.items, len(entry.payload.body))
            if entry.future.done():
                continue
            if err is None:
                entry.future.set_result(None)
            else:
                entry.future.set_exception(err)
                entry.future.exception()  # mark retrieved: a hung-up client never awaits it
        for signal in SIGNALS:  # a worker is free
            self._maybe_early(signal)

    # -- workers (threads) ------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            batch = self._work.get()
            if batch is None:
                return
            try:
                errors = self.send(batch)
            except BaseException as exc:  # never leave a request hanging
                log.exception("pipeline worker failed")
                errors = [OtelAiError(f"internal error: {exc}")] * len(batch)
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # loop closed: shutdown gave up waiting on us
                self._loop.call_soon_threadsafe(self.settle, batch, errors)
