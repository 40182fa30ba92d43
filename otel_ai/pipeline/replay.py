"""The durable spool behind the pipeline: what an outage kept from storage is appended (fsynced)
and acknowledged; a thread replays it, oldest first, once storage answers.

Spool full → the requests fail with 503 / UNAVAILABLE (the sender keeps the data and retries).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from otel_ai.errors import OverloadedError, StorageError
from otel_ai.model import Payload
from otel_ai.pipeline.config import PipelineConfig
from otel_ai.pipeline.isolation import IsolatingWriter
from otel_ai.pipeline.spool import Spool
from otel_ai.pipeline.stats import PipelineStats

log = logging.getLogger(__name__)


class SpoolReplay:
    """``spool(payloads)`` on the insert workers; :meth:`start` runs the replay thread."""

    def __init__(
        self, config: PipelineConfig, spool: Spool, writer: IsolatingWriter, stats: PipelineStats
    ) -> None:
        self.config = config
        self.spool = spool
        self.writer = writer
        self.stats = stats
        self.retry_after = 1.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def spool_payloads(self, payloads: Sequence[Payload]) -> list[BaseException | None]:
        """Append to the spool (acknowledged once fsynced); a full spool fails every payload."""
        try:
            self.spool.append(payloads)
        except (OverloadedError, StorageError) as exc:
            self.stats.error(exc.message)
            if not isinstance(exc, OverloadedError):
                exc = OverloadedError(exc.message, retry_after=self.retry_after)
            return [exc] * len(payloads)
        items = sum(p.items for p in payloads)
        self.stats.add(spooled_items=items)
        self.stats.m_items.labels(payloads[0].signal, "spooled").inc(items)
        self._wake.set()
        return [None] * len(payloads)

    # -- replay (thread) ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._replayer, name="spool-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (it finishes the batch it is replaying); see :meth:`join`."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

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
                self._wake.wait(interval)
                self._wake.clear()
            else:
                self._stop.wait(interval)

    def _replay_one(self) -> bool:
        records = self.spool.read_batch(self.config.batch_items)
        if not records:
            return True
        payloads = [r.payload for r in records]
        out = self.writer.write(payloads)
        if any(r.retry for r in out):
            return False  # storage still down; keep the records, retry after the interval
        # Records refused on their own (DecodeError, non-retryable StorageError) are dropped and
        # counted (otel_ai_pipeline_dropped_items_total): retrying them would block the spool forever.
        self.spool.commit(records)
        self.writer.storage_down = False  # storage answers again: live batches go straight to it
        items = sum(p.items for p, r in zip(payloads, out, strict=True) if r.kind == "written")
        self.stats.add(replayed_items=items)
        self.stats.m_items.labels(payloads[0].signal, "replayed").inc(items)
        return True
