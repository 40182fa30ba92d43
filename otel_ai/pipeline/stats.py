"""The pipeline's counters: totals for ``/api/v1/status``, the last error, and the Prometheus
counters every stage (isolation, spool, replay) adds to."""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)


class PipelineStats:
    """Thread-safe: the insert workers, the replay thread and the event loop all add to it."""

    def __init__(self, registry: CollectorRegistry) -> None:
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
        self.m_dropped = Counter(
            "otel_ai_pipeline_dropped_items",
            "Items accepted from the network and then dropped, by reason",
            ["reason"],
            registry=registry,
        )
        self.m_items = Counter(
            "otel_ai_pipeline_items",
            "Items leaving the pipeline, by signal and outcome",
            ["signal", "outcome"],
            registry=registry,
        )

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, n in counts.items():
                self.totals[key] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.totals)

    def error(self, message: str) -> None:
        """Remember ``message`` as the last error; log it once, not on every repeat."""
        with self._lock:
            if message != self.last_error:
                log.warning("pipeline: %s", message)
            self.last_error, self.last_error_at = message, time.time()
