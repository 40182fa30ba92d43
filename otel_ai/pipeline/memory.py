"""A resident-memory guard for the daemon, after the Collector's ``memory_limiter`` processor.

A thread reads the process's resident set size every ``check_interval_ms`` (``/proc/self/statm``:
one read, no allocation worth counting) and acts on two levels:

* above ``purge_above_mib`` it asks the embedded engine to hand the pages it has freed back to the
  OS (``SYSTEM JEMALLOC PURGE``), at most once per ``purge_interval_ms``. chDB's jemalloc keeps
  freed pages for seconds (``dirty_decay_ms`` 5000, no purge thread), so after a burst of big
  inserts the RSS is well above what the engine uses (docs/ingest-storage.md, "Where the memory
  is"). Each purge is paid for when the pages are faulted in again: purging whenever the RSS was
  above 640 MiB cost ~20 % more CPU per span under a 64-sender overload, from 768 MiB (at the
  soft limit of the README's 1-GiB settings) the cost was within the noise — so set it near the
  limit. The purge takes a chDB handle from the shared pool like any query;
* above the soft limit (``limit_mib - spike_limit_mib``) the pipeline refuses new exports with
  503 / UNAVAILABLE and a retry hint while ingest holds data, and the write-ahead drain stops
  reading a second batch ahead and takes half batches (``ack: spool``); what was accepted is still
  stored. The spike headroom is for what is already running when the limit is crossed: an insert
  holds ~3.5x its Native block (~75 MiB for 23k spans), a merge up to ~150 MiB.

Both levels are 0 by default (the guard then only keeps the RSS figures for status and /metrics):
near the limit it trades throughput for memory (README, "Memory guard"). Where the RSS cannot be
read (not Linux) the guard logs once and stays off.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from otel_ai.pipeline.config import MemoryConfig

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_STUCK_S = 60  # warn again after this long above the soft limit
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """This process's resident set size, or None where ``/proc`` is not available."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class MemoryGuard:
    """See the module docstring. ``purge`` returns freed memory to the OS (False: cannot)."""

    def __init__(
        self,
        config: MemoryConfig,
        purge: Callable[[], bool] | None,
        *,
        registry: CollectorRegistry | None = None,
        read_rss: Callable[[], int | None] = resident_bytes,
    ) -> None:
        self.config = config
        self._purge = purge
        self._read_rss = read_rss
        self.enabled = config.limit_mib > 0 or config.purge_above_mib > 0
        self.soft_limit = max(0, config.limit_mib - config.spike_limit_mib) * MIB if config.limit_mib else 0
        self.purge_above = config.purge_above_mib * MIB
        self.rss = 0
        self.peak_rss = 0
        self.over_soft_limit = False
        self.purges = 0
        self.purged_bytes = 0
        self.refusal_periods = 0
        self._last_purge = 0.0
        self._over_since = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        reg = registry or CollectorRegistry()
        Gauge("otel_ai_memory_resident_bytes", "Resident set size of the daemon", registry=reg).set_function(
            lambda: self.rss
        )
        Gauge(
            "otel_ai_memory_soft_limit_bytes",
            "Exports are refused while the resident set is above this (0: no limit)",
            registry=reg,
        ).set_function(lambda: self.soft_limit)
        self.m_purges = Counter(
            "otel_ai_memory_purges", "Times the embedded engine was asked to return freed pages", registry=reg
        )
        self.m_purged = Counter(
            "otel_ai_memory_purged_bytes", "Resident bytes released by those purges", registry=reg
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread; with both levels off it only keeps the RSS figures up to date."""
        rss = self._read_rss()
        if rss is None:
            if self.enabled:
                log.warning("memory guard off: this platform does not expose the resident set size")
            self.enabled = False
            return
        self.rss = self.peak_rss = rss
        self._thread = threading.Thread(target=self._run, name="memory-guard", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the check ------------------------------------------------------------------------------
    def _run(self) -> None:
        interval = self.config.check_interval_ms / 1000
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # never let the guard die: log and keep checking
                log.exception("memory guard: check failed")

    def check(self) -> None:
        """One round: read the RSS, purge if it is high, set or clear the refusal flag."""
        rss = self._read_rss()
        if rss is None:
            return
        now = time.monotonic()
        if (
            self._purge is not None
            and self.purge_above
            and rss > self.purge_above
            and now - self._last_purge >= self.config.purge_interval_ms / 1000
        ):
            self._last_purge = now
            if self._purge():
                after = self._read_rss() or rss
                self.purges += 1
                self.m_purges.inc()
                if after < rss:
                    self.purged_bytes += rss - after
                    self.m_purged.inc(rss - after)
                rss = after
            else:
                self._purge = None  # the store cannot (a ClickHouse server manages its own memory)
        self.rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        over = bool(self.soft_limit) and rss > self.soft_limit
        if over and not self.over_soft_limit:
            self.refusal_periods += 1
            self._over_since = now
            log.warning(
                "memory: resident %d MiB above the soft limit %d MiB: refusing exports while ingest "
                "holds data, until it falls", rss // MIB, self.soft_limit // MIB,
            )  # fmt: skip
        elif over and now - self._over_since > _STUCK_S:
            self._over_since = now
            log.warning(
                "memory: resident %d MiB has stayed above the soft limit %d MiB for %d s; if ingest "
                "is idle the memory is held elsewhere — raise memory.limit_mib",
                rss // MIB, self.soft_limit // MIB, _STUCK_S,
            )  # fmt: skip
        elif self.over_soft_limit and not over:
            log.info("memory: resident %d MiB, back under the soft limit: accepting exports", rss // MIB)
        self.over_soft_limit = over

    def refusal_message(self) -> str:
        """What a refused export is told (the caller decides when: ``over_soft_limit``)."""
        return (
            f"memory: resident {self.rss // MIB} MiB is above the soft limit {self.soft_limit // MIB} MiB "
            "(memory.limit_mib - memory.spike_limit_mib)"
        )

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "resident_bytes": self.rss,
            "peak_resident_bytes": self.peak_rss,
            "soft_limit_bytes": self.soft_limit,
            "purge_above_bytes": self.purge_above,
            "above_soft_limit": self.over_soft_limit,
            "refusal_periods": self.refusal_periods,
            "purges": self.purges,
            "purged_bytes": self.purged_bytes,
        }
