"""The insights service: detectors → records → merge by fingerprint → narrative → store.

A run over a window (scheduled every ``interval_s`` over the last ``lookback_s``, or on demand
for any past range) runs every detector, scores each finding by code, merges it with the stored
insight of the same fingerprint (first/last seen widen; content follows the newest window),
narrates only new or changed findings, counts a miss for open insights it did not see (resolved
after ``resolve_after_runs`` misses) and expires insights not seen for ``expire_after_s``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from otel_ai.analysis.insights import ask as ask_mod
from otel_ai.analysis.insights import prompts, record
from otel_ai.analysis.insights.config import InsightsConfig
from otel_ai.analysis.insights.detectors import build_detectors
from otel_ai.analysis.insights.model import KINDS, DetectContext, Detector, Finding, Window
from otel_ai.analysis.insights.narrate import Narrator
from otel_ai.analysis.insights.scoring import SEVERITIES
from otel_ai.analysis.insights.store import InsightStore
from otel_ai.errors import InvalidParameter
from otel_ai.storage import Storage
from otel_ai.timeutil import parse_instant, rfc3339

log = logging.getLogger(__name__)
LIST_STATUSES = ("open", "resolved", "expired", "all")


def _t(text: str) -> datetime:
    return parse_instant(text)


def _earliest(a: str, b: str) -> str:
    return a if _t(a) <= _t(b) else b


def _replayed(prev: dict[str, Any] | None, window: Window) -> bool:
    """Whether the stored record is newer than ``window`` (this run is an older replay)."""
    return prev is not None and _t(prev["last_seen"]) > window.end


class _LoopThread:
    """An event loop of our own in a daemon thread, for LLM calls when no loop is given."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="insights-llm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def check_filters(status: str | None, kind: str | None, severity: str | None) -> None:
    """400-style errors naming the parameter for values outside the vocabularies."""
    if status is not None and status not in LIST_STATUSES:
        raise InvalidParameter("status", f"expected one of {', '.join(LIST_STATUSES)}, got {status!r}")
    if kind is not None and kind not in KINDS:
        raise InvalidParameter("kind", f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidParameter("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")


class InsightsService:
    def __init__(
        self,
        storage: Storage,
        config: InsightsConfig,
        registry: CollectorRegistry | None = None,
        *,
        topology: Any = None,
        anomaly: Any = None,
        llm: Any = None,
        detectors: Sequence[Detector] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.storage, self.cfg = storage, config
        self.topology, self.anomaly, self.llm = topology, anomaly, llm
        self.detectors: list[Detector] = (
            list(detectors) if detectors is not None else build_detectors(config.detectors)
        )
        self.store = InsightStore(storage)
        self.narrator = Narrator(llm, config, self._run_coro)
        self._loop = loop
        self._own_loop: _LoopThread | None = None
        self._lock = threading.Lock()  # one merge-and-write at a time (scheduled run vs. API generate)
        self._closed = False
        reg = registry if registry is not None else CollectorRegistry()
        self.m_runs = Counter("otel_ai_insights_runs", "Insight runs by outcome", ["outcome"], registry=reg)
        self.m_findings = Counter("otel_ai_insights_findings", "Findings by kind", ["kind"], registry=reg)
        self.m_detector_errors = Counter(
            "otel_ai_insights_detector_errors", "Detector failures by kind", ["kind"], registry=reg
        )
        self.m_narratives = Counter(
            "otel_ai_insights_narratives", "Narratives by source", ["source"], registry=reg
        )
        self.m_seconds = Histogram("otel_ai_insights_run_seconds", "Insight run time", registry=reg)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.migrate()

    def shutdown(self) -> None:
        self._closed = True
        if self._own_loop is not None:
            self._own_loop.stop()
            self._own_loop = None

    def register_jobs(self, scheduler: Any) -> None:
        scheduler.add_job(self._job, "interval", seconds=self.cfg.interval_s, id="insights.generate",
                          max_instances=1, coalesce=True, replace_existing=True)  # fmt: skip

    def _job(self) -> None:
        if self._closed:
            return
        try:
            self.run_scheduled()
        except Exception:  # a failed run must not kill the scheduler
            self.m_runs.labels("error").inc()
            log.exception("insights run failed")

    def run_scheduled(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or datetime.now(UTC)
        return self.generate(Window(now - timedelta(seconds=self.cfg.lookback_s), now))

    # -- the LLM bridge -----------------------------------------------------------------------------
    def _run_coro(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a manager coroutine to completion from a worker thread."""
        loop = self._loop if self._loop is not None and self._loop.is_running() else None
        if loop is None:
            if self._own_loop is None:
                self._own_loop = _LoopThread()
            loop = self._own_loop.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("InsightsService: call generate/ask from a worker thread, not the event loop")
        cfg = getattr(self.llm, "config", None)
        timeout = float(cfg.timeouts.total_s) + 30 if cfg is not None else 120.0
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=timeout)

    # -- inputs from the other rooms ----------------------------------------------------------------
    def _topology(self, window: Window) -> dict[str, Any] | None:
        if self.topology is None:
            return None
        try:
            return self.topology.topology(window.start, window.end).model_dump(mode="json")  # type: ignore[no-any-return]
        except Exception as exc:  # insights still run without the topology room
            log.warning("insights: topology unavailable: %s", exc)
            return None

    def _anomalies(self, window: Window) -> list[dict[str, Any]]:
        if self.anomaly is None:
            return []
        try:
            return list(self.anomaly.list(window.start, window.end))
        except Exception as exc:
            log.warning("insights: anomalies unavailable: %s", exc)
            return []

    def _detect(self, ctx: DetectContext) -> tuple[list[Finding], set[str]]:
        findings: list[Finding] = []
        ran: set[str] = set()
        for det in self.detectors:
            try:
                found = det.detect(ctx)
            except Exception:  # one broken detector must not hide the others' findings
                self.m_detector_errors.labels(det.kind).inc()
                log.exception("insights: detector %s failed", det.kind)
                continue
            ran.add(det.kind)
            for f in found:
                self.m_findings.labels(f.kind).inc()
            findings.extend(found)
        return findings, ran

    # -- runs ---------------------------------------------------------------------------------------
    def generate(self, window: Window) -> list[dict[str, Any]]:
        """Run the whole pipeline over ``window``; store and return its insights, most severe first."""
        t0 = time.monotonic()
        topo = self._topology(window)
        ctx = DetectContext(self.storage, window, topology=topo, anomalies=self._anomalies(window))
        findings, ran = self._detect(ctx)
        universe = {n["id"] for n in (topo or {}).get("nodes") or []}
        universe.update(e.id for f in findings for e in f.entities)
        out = self._merge(window, findings, ran, universe)
        self.m_seconds.observe(time.monotonic() - t0)
        self.m_runs.labels("ok").inc()
        return record.most_severe_first([record.public(r) for r in out])

    def _merge(
        self, window: Window, findings: list[Finding], ran: set[str], universe: set[str]
    ) -> list[dict[str, Any]]:
        """Merge with the stored insights and write. The narrative (LLM calls, seconds each) is
        written outside the lock: the stored records are read again under it before writing, so
        a run that wrote the same fingerprints meanwhile still decides the id, the first sighting
        and — when its window is newer — the content."""
        fresh: dict[str, tuple[dict[str, Any], Finding]] = {}
        for f in findings:
            rec = record.build(f, window, self.cfg.scoring)
            fresh.setdefault(rec["fingerprint"], (rec, f))  # two findings with one fingerprint: the first
        previous = self.store.by_fingerprints(fresh)
        to_narrate = []
        for fp, (rec, f) in fresh.items():
            prev = previous.get(fp)
            if _replayed(prev, window):
                continue
            if prev is not None:
                rec["id"] = prev["id"]
                rec["first_seen"] = _earliest(prev["first_seen"], rec["first_seen"])
            to_narrate.append((rec, f, prev))
        budget = self.cfg.max_narrated_per_run
        for rec, f, prev in sorted(to_narrate, key=lambda t: record.RANK.get(t[0]["severity"], 9)):
            source = self.narrator.narrate(rec, f, universe, prev, allow_call=budget > 0)
            budget -= source in ("calls", "errors")
            self.m_narratives.labels(source).inc()
        with self._lock:
            previous = self.store.by_fingerprints(fresh)
            result: list[dict[str, Any]] = []
            for fp, (rec, _f) in fresh.items():
                prev = previous.get(fp)
                if _replayed(prev, window):  # an older replay: widen only
                    assert prev is not None
                    prev["first_seen"] = _earliest(prev["first_seen"], rec["first_seen"])
                    result.append(prev)
                    continue
                if prev is not None:
                    rec["id"] = prev["id"]
                    rec["first_seen"] = _earliest(prev["first_seen"], rec["first_seen"])
                result.append(rec)
            # One row per id: an insight both missed and expired in this run is written once (expired).
            changed = {
                r["id"]: r for r in result + self._misses(window, set(fresh), ran) + self._expired(window)
            }
            self.store.save(changed.values())
        return result

    def _misses(self, window: Window, seen: set[str], ran: set[str]) -> list[dict[str, Any]]:
        """Open insights of the kinds that ran but not seen now: one more miss (resolved at N)."""
        out = []
        for rec in self.store.with_status(["open"]):
            if rec["fingerprint"] in seen or rec["kind"] not in ran or _t(rec["last_seen"]) > window.end:
                continue
            rec["missed_runs"] = int(rec.get("missed_runs", 0)) + 1
            if rec["missed_runs"] >= self.cfg.resolve_after_runs:
                rec["status"] = "resolved"
            out.append(rec)
        return out

    def _expired(self, window: Window) -> list[dict[str, Any]]:
        out = []
        for rec in self.store.stale(window.end - timedelta(seconds=self.cfg.expire_after_s)):
            rec["status"] = "expired"
            out.append(rec)
        return out

    # -- reads ----------------------------------------------------------------------------------
    def list(
        self,
        since: datetime,
        until: datetime,
        status: str | None = "open",
        kind: str | None = None,
        service: str | None = None,
        severity: str | None = None,
    ) -> list[dict[str, Any]]:
        """Insights seen in ``[since, until)``, most severe first; ``status`` ``all`` or ``None``: any."""
        check_filters(status, kind, severity)
        st = None if status in (None, "all") else status
        found = self.store.find(since, until, status=st, kind=kind, service=service, severity=severity)
        return [record.public(r) for r in found]

    def get(self, insight_id: str) -> dict[str, Any] | None:
        found = self.store.get(insight_id)
        return record.public(found) if found is not None else None

    def ask(self, question: str, window: Window) -> dict[str, Any]:
        """A grounded answer from the window's insights, anomalies and topology."""
        return self._answer(question, window, prompts.ASK)

    def digest(self, window: Window) -> dict[str, Any]:
        """The window's most important insights in a few grounded sentences (ask's shape)."""
        return self._answer(
            "What matters most in this window, and what should change?", window, prompts.DIGEST
        )

    def _answer(self, question: str, window: Window, prompt: prompts.Prompt) -> dict[str, Any]:
        if not question.strip():
            raise InvalidParameter("question", "must not be empty")
        insights = [i for i in self.list(window.start, window.end, status="all") if i["status"] != "expired"]
        return ask_mod.answer(
            self.llm if self.cfg.narrate else None, self._run_coro, question, insights[: self.cfg.ask_max_insights],
            self._anomalies(window), self._topology(window),
            window={"start": rfc3339(window.start), "end": rfc3339(window.end)},
            max_tokens=self.cfg.max_tokens, prompt=prompt, model=self.narrator.model_override(),
        )  # fmt: skip


def build_insights_service(
    storage: Storage,
    config: InsightsConfig,
    registry: CollectorRegistry | None,
    *,
    topology: Any = None,
    anomaly: Any = None,
    llm: Any = None,
    detectors: Sequence[Detector] | None = None,
) -> InsightsService | None:
    """The service, or ``None`` when ``insights.enabled`` is false. Called on the daemon's event
    loop, it sends LLM calls to that loop (where the manager lives)."""
    if not config.enabled:
        return None
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    return InsightsService(storage, config, registry, topology=topology, anomaly=anomaly, llm=llm,
                           detectors=detectors, loop=loop)  # fmt: skip
