"""``anomaly``: each open anomaly of the window (the anomaly room's ``/api/v1/anomalies`` items)
restated in the Watchdog shape: the **root cause** (a state change: a deploy seen as a
``service.version`` change of the root-cause service in the window, else the anomaly's own
kind), the **critical failure** (the first abnormal entity and its worst feature) and the
**impact** (the services it reached)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from otel_ai.analysis.insights.detectors.common import edge, evidence, key_of, naive, node, op
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import (
    ChangeType,
    DetectContext,
    Entity,
    Evidence,
    Finding,
    Impact,
    Kind,
    Recommendation,
    RootCause,
)
from otel_ai.timeutil import parse_instant

KIND: Kind = "anomaly"
TRACES_SQL = """
SELECT uniqIf(TraceId, ServiceName = {service:String}) AS affected, uniq(TraceId) AS total,
       uniqExactIf(ResourceAttributes['service.version'], ServiceName = {cause:String}) AS versions,
       argMinIf(ResourceAttributes['service.version'], Timestamp, ServiceName = {cause:String}) AS v_first,
       argMaxIf(ResourceAttributes['service.version'], Timestamp, ServiceName = {cause:String}) AS v_last
FROM {db:Identifier}.otel_traces
PREWHERE Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)}
"""
_CHANGE: dict[str, ChangeType] = {
    "own_errors": "errors",
    "slow_itself": "latency",
    "slow_dependency": "latency",
    "traffic_drop": "traffic",
    "traffic_surge": "traffic",
    "retry_storm_or_fanout": "traffic",
    "structure_change": "dependency",
}


def _entity(e: dict[str, Any]) -> list[Entity]:
    service = str(e.get("service") or "")
    out = [node(service)] if service else []
    if e.get("operation"):
        out.append(op(service, str(e["operation"])))
    if e.get("target"):
        out += [node(str(e["target"])), edge(service, str(e["target"]))]
    return out


class AnomalyDetector:
    kind: Kind = KIND

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg = config.anomaly

    def detect(self, ctx: DetectContext) -> list[Finding]:
        out = []
        for a in sorted(ctx.anomalies, key=lambda a: str(a.get("id", ""))):
            if a.get("closed_at") or not isinstance(a.get("entity"), dict) or not a["entity"].get("service"):
                continue
            f = self._finding(ctx, a)
            if f is not None:
                out.append(f)
        return out

    def _finding(self, ctx: DetectContext, a: dict[str, Any]) -> Finding | None:
        ent = a["entity"]
        service = str(ent["service"])
        causes = [
            str(r["service"]) for r in a.get("root_causes") or [] if isinstance(r, dict) and r.get("service")
        ]
        cause = causes[0] if causes else service
        ev_doc: dict[str, Any] = a["evidence"] if isinstance(a.get("evidence"), dict) else {}
        opened = _instant(a.get("opened_at")) or ctx.window.start
        start = max(naive(opened), naive(ctx.window.start))
        row = ctx.storage.query_dicts(
            TRACES_SQL,
            {
                "db": ctx.storage.database,
                "service": service,
                "cause": cause,
                "start": start,
                "end": naive(ctx.window.end),
            },
        )[0]
        affected, total = int(row["affected"]), int(row["total"])
        if affected < self.cfg.min_traces:
            return None
        key = key_of(*(e.id for e in _entity(ent)), str(a.get("id", "")))
        ids = tuple(str(t) for t in (ev_doc.get("trace_ids") or [])[:5])
        ev: list[Evidence] = []
        latency_ms = error_share = None
        for f in a.get("features") or []:
            name = str(f.get("name") or f.get("feature") or "feature")
            ev.append(
                evidence(
                    KIND,
                    key,
                    f"feature:{name}",
                    "anomaly",
                    f"{name} of {service}",
                    _num(f.get("value")),
                    _num(f.get("baseline")),
                    str(f.get("unit") or ""),
                    ids,
                )
            )
            value, base = _num(f.get("value")), _num(f.get("baseline"))
            lname = name.lower()
            if value is not None and ("err" in lname) and error_share is None:
                error_share = max(0.0, value - (base or 0.0)) if value <= 1 else None
            if (
                value is not None
                and base is not None
                and any(q in lname for q in ("p50", "p95", "p99", "latency"))
            ):
                latency_ms = max(latency_ms or 0.0, value - base)
        change: ChangeType = _CHANGE.get(str(ev_doc.get("kind") or ""), "unknown")
        if int(row["versions"]) > 1 and row["v_first"] != row["v_last"]:
            change = "deploy"
            ev.append(
                evidence(
                    KIND,
                    key,
                    "version",
                    "deploy",
                    f"service.version of {cause} changed in the window",
                    str(row["v_last"]),
                    str(row["v_first"]),
                )
            )
        impacted = sorted({str(s) for s in ev_doc.get("services") or [] if s} - {cause})
        ev.append(
            evidence(
                KIND,
                key,
                "score",
                "anomaly",
                f"anomaly score of {service} (1 = threshold)",
                _num(a.get("score")),
                1.0,
                "",
                ids,
            )
        )
        ev.append(
            evidence(
                KIND,
                key,
                "impact",
                "anomaly",
                "services the anomaly reached",
                ", ".join(impacted) or service,
                None,
                "",
                ids,
            )
        )
        ev_ids = tuple(e.id for e in ev)
        worst = next((e for e in ev if e.id.split(":")[-2] == "feature"), ev[0])
        entities = [*_entity(ent), node(cause), *(node(s) for s in impacted)]
        dur = (naive(ctx.window.end) - start).total_seconds()
        return Finding(
            kind=KIND,
            category="reliability" if change in ("errors", "deploy") or error_share else "performance",
            title=f"Anomaly on {service}"
            + (f" caused by {cause}" if cause != service else "")
            + (" after a deploy" if change == "deploy" else ""),
            key=key,
            entities=tuple(dict.fromkeys(entities)),
            evidence=tuple(ev),
            impact=Impact(
                affected,
                max(total, affected),
                entry_share=0.0,
                latency_ms=latency_ms,
                error_share=error_share,
                duration_s=max(0.0, dur),
                at_entry=True,
            ),
            root_cause=RootCause(node(cause), change, ev_ids),
            recommendations=(
                Recommendation(
                    f"Start at {cause}"
                    + (
                        ": roll back or fix the new version"
                        if change == "deploy"
                        else f": look at its {worst.description}"
                    )
                    + (f"; then check {', '.join(impacted[:3])}" if impacted else ""),
                    f"{cause} is ranked first among the root causes of the anomaly on {service}",
                    ev_ids,
                ),
            ),
            facts={
                "root_cause": cause,
                "critical_failure": f"{service}: {worst.description}",
                "impact": ", ".join(impacted) or service,
                "change_type": change,
                "anomaly_id": str(a.get("id", "")),
            },
        )


def _num(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _instant(v: Any) -> datetime | None:
    if not v:
        return None
    try:
        return parse_instant(str(v))
    except Exception:
        return None
