"""The report service: build, archive, schedule and deliver reports.

``generate(window, name)`` builds a report from stored data (content, then the grounded executive
summary), stores it and hands its deliveries to the :class:`Deliverer`. A report that cannot be
built is stored as ``failed`` with the reason, so the archive shows every run. Scheduled runs
cover ``[fire time - window, fire time)``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from otel_ai.errors import InvalidParameter, NotFound
from otel_ai.reports.config import FORMATS, ReportsConfig, Schedule
from otel_ai.reports.content import ContentBuilder, Window, window_ending
from otel_ai.reports.deliver import Deliverer
from otel_ai.reports.render import render
from otel_ai.reports.schedule import add_schedule_job, last_fire_at_or_before, missed_fire, parse_cron
from otel_ai.reports.store import ReportStore
from otel_ai.reports.summary import write_summary
from otel_ai.storage import Storage
from otel_ai.timeutil import rfc3339

log = logging.getLogger(__name__)
ADHOC = "adhoc"


class ReportService:
    def __init__(self, storage: Storage, config: ReportsConfig, registry: CollectorRegistry | None = None, *,
                 sources: Any = None, loop: asyncio.AbstractEventLoop | None = None) -> None:  # fmt: skip
        self.storage, self.cfg, self.sources, self.loop = storage, config, sources, loop
        self.store = ReportStore(storage, config.retention_days)
        self.content = ContentBuilder(storage, config, sources)
        reg = registry if registry is not None else CollectorRegistry()
        self.deliverer = Deliverer(config, self.store.record_attempt, reg)
        self.schedules = {s.name: s for s in config.schedules}
        self._triggers = {s.name: parse_cron(s.cron, s.timezone) for s in config.schedules}
        self._started = False
        self._lock = threading.Lock()
        self._last_fire: dict[str, datetime] = {}  # newest fire time run per schedule
        self.m_reports = Counter("otel_ai_reports", "Reports built, by status", ["status"], registry=reg)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self.store.migrate()
        self.deliverer.start()
        self._started = True

    def shutdown(self) -> None:
        if not self._started:
            return
        self._started = False
        self.deliverer.shutdown()

    def register_jobs(self, scheduler: Any, now: datetime | None = None) -> list[str]:
        """One cron job per schedule, plus one catch-up run per schedule that missed a fire time."""
        for name, trigger in self._triggers.items():
            add_schedule_job(scheduler, f"report-{name}", trigger, self._job(name), self.cfg.misfire_grace_s)
        caught: list[str] = []
        last = self.store.last_scheduled() if self._triggers else {}
        with self._lock:
            self._last_fire.update(last)
        if self.cfg.catch_up and self._triggers:
            now = now or datetime.now(UTC)
            for name, trigger in self._triggers.items():
                missed = missed_fire(trigger, last.get(name), now)
                if missed is not None:
                    log.info("report %s: the run of %s was missed while stopped; catching up", name, missed)
                    scheduler.add_job(self._job(name, missed), id=f"report-{name}-catch-up", replace_existing=True,
                                      max_instances=1, misfire_grace_time=None)  # fmt: skip
                    caught.append(name)
        return caught

    def _job(self, name: str, fire: datetime | None = None) -> Any:
        def run() -> None:
            when = (
                fire or last_fire_at_or_before(self._triggers[name], datetime.now(UTC)) or datetime.now(UTC)
            )
            with self._lock:  # a fire time runs once (the catch-up and the cron job may both reach it)
                if name in self._last_fire and when <= self._last_fire[name]:
                    return
                self._last_fire[name] = when
            try:
                self.run_schedule(name, when)
            except Exception:  # a failed run must not kill the scheduler; it is recorded as failed
                log.exception("report %s failed", name)

        run.__name__ = f"report_{name}"
        return run

    def run_schedule(self, name: str, fire: datetime) -> dict[str, Any]:
        """The run of schedule ``name`` due at ``fire``: build, store, deliver."""
        sched = self.schedules[name]
        window = window_ending(fire, sched.window_delta)
        doc = self.generate(window, name, scheduled_for=fire)
        self.deliverer.submit(doc, sched)
        return doc

    # -- building -------------------------------------------------------------------------------
    def _run_coro(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Drive an LLM manager coroutine from a worker thread on the daemon's loop (or a fresh one)."""
        loop = self.loop
        if loop is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
            try:
                return fut.result(self.cfg.summary_timeout_s)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise
        return asyncio.run(asyncio.wait_for(coro, self.cfg.summary_timeout_s))

    def generate(
        self, window: Window, name: str = ADHOC, *, scheduled_for: datetime | None = None
    ) -> dict[str, Any]:
        """Build and store one report over ``window``; a build failure is stored as ``failed``."""
        if window.end <= window.start:
            raise InvalidParameter("until", "must be after since")
        doc: dict[str, Any] = {"id": uuid.uuid4().hex[:16], "name": name, "created_at": rfc3339(datetime.now(UTC)),
                               "scheduled_for": rfc3339(scheduled_for) if scheduled_for else None}  # fmt: skip
        try:
            doc.update(self.content.build(window))
            doc["summary"], doc["summary_note"] = self._summary(doc)
            doc["error"] = None
        except Exception as exc:
            log.warning("report %s (%s) failed to build: %s", doc["id"], name, exc)
            doc.update({"window": window.public(), "comparison": window.previous.public(), "status": "failed",
                        "error": f"{type(exc).__name__}: {exc}", "counts": {}})  # fmt: skip
        self.store.save(doc, scheduled_for)
        self.m_reports.labels(doc["status"]).inc()
        doc["deliveries"] = []
        return doc

    def _summary(self, doc: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The grounded summary, or ``None`` and why there is none (a missing summary is not a failure)."""
        llm = getattr(self.sources, "llm", None) if self.sources is not None else None
        if not self.cfg.summary:
            return None, "turned off (reports.summary)"
        if llm is None:
            return None, "no LLM manager on this instance (llm.enabled)"
        try:
            return write_summary(doc, llm, self._run_coro), None
        except Exception as exc:
            log.warning("report %s: executive summary failed: %s", doc["id"], exc)
            return None, f"the LLM manager failed ({type(exc).__name__}: {exc})"

    # -- reads ------------------------------------------------------------------------------------
    def list(self, since: datetime | None = None, until: datetime | None = None,
             name: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        return self.store.list(since, until, name)

    def get(self, report_id: str) -> dict[str, Any]:
        doc = self.store.get(report_id)
        if doc is None:
            raise NotFound(f"report {report_id} not found")
        return doc

    def rendered(self, report_id: str, fmt: str) -> tuple[str, str]:
        if fmt not in FORMATS:
            raise InvalidParameter("format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
        return render(self.get(report_id), fmt)

    def status(self) -> dict[str, Any]:
        return {"schedules": [{"name": s.name, "cron": s.cron, "window": s.window, "targets": len(s.deliver)}
                              for s in self.schedules.values()], "deliveries_pending": self.deliverer.pending}  # fmt: skip


def build_report_service(storage: Storage, config: ReportsConfig, registry: CollectorRegistry | None, *,
                         sources: Any = None, loop: asyncio.AbstractEventLoop | None = None) -> ReportService | None:  # fmt: skip
    if not config.enabled:
        return None
    return ReportService(storage, config, registry, sources=sources, loop=loop)


__all__ = ["ADHOC", "ReportService", "Schedule", "build_report_service"]
