"""``slow_query``: normalised DB statements with p95 ≥ ``min_p95_ms``, or the statement holding
the largest share of DB time when that share is dominant (≥ ``dominant_share``)."""

from __future__ import annotations

from typing import Any

from otel_ai.analysis.insights.detectors.common import (
    KEY_EXPR,
    VIRTUAL_ID,
    edge,
    evidence,
    key_of,
    node,
    params,
    ratio_evidence,
    recommend,
)
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import DetectContext, Finding, Impact, Kind

KIND: Kind = "slow_query"
STATEMENTS_SQL = f"""
SELECT ServiceName AS service, {VIRTUAL_ID} AS db, {KEY_EXPR} AS stmt, count() AS calls,
       uniq(TraceId) AS traces, quantile(0.5)(Duration) / 1e6 AS p50, quantile(0.95)(Duration) / 1e6 AS p95,
       sum(Duration) / 1e6 AS total_ms, min(Timestamp) AS first, max(Timestamp) AS last,
       arrayMap(x -> x.2, groupArraySorted({{n:UInt32}})((-toInt64(Duration), TraceId))) AS slowest
FROM {{db:Identifier}}.otel_traces
PREWHERE Timestamp >= {{start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}} AND SpanKind = 'Client'
  AND mapContains(SpanAttributes, 'db.system')
WHERE SpanAttributes['db.system'] != ''
GROUP BY service, db, stmt
"""
SERVICE_TRACES_SQL = """
SELECT ServiceName, uniq(TraceId) FROM {db:Identifier}.otel_traces
PREWHERE Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)} AND ServiceName IN {services:Array(String)}
GROUP BY ServiceName
"""


class SlowQueryDetector:
    kind: Kind = KIND

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg, self.n_examples = config.slow_query, config.example_traces

    def detect(self, ctx: DetectContext) -> list[Finding]:
        rows = ctx.storage.query_dicts(STATEMENTS_SQL, params(ctx, n=max(1, self.n_examples)))
        db_time = sum(r["total_ms"] for r in rows)
        if not rows or db_time <= 0:
            return []
        top = max(rows, key=lambda r: r["total_ms"])
        chosen = []
        for r in rows:
            slow = r["p95"] >= self.cfg.min_p95_ms
            dominant = (
                r is top
                and r["total_ms"] / db_time >= self.cfg.dominant_share
                and r["p95"] >= self.cfg.dominant_min_p95_ms
            )
            if (slow or dominant) and r["calls"] >= self.cfg.min_calls and r["traces"] >= self.cfg.min_traces:
                chosen.append(r)
        if not chosen:
            return []
        services = sorted({r["service"] for r in chosen})
        per_service = dict(ctx.storage.query(SERVICE_TRACES_SQL, params(ctx, services=services)))
        return [self._finding(r, db_time, int(per_service.get(r["service"], r["traces"]))) for r in chosen]

    def _finding(self, r: dict[str, Any], db_time: float, service_traces: int) -> Finding:
        service, db, stmt = str(r["service"]), str(r["db"]) or "database", str(r["stmt"])
        p95, p50 = float(r["p95"]), float(r["p50"])
        share = float(r["total_ms"]) / db_time
        key = key_of(service, db, stmt)
        ids = tuple(r["slowest"])
        ev = (
            evidence(
                KIND,
                key,
                "p95_ms",
                "metric",
                f"p95 duration of {stmt[:80]!r} from {service} on {db}",
                p95,
                self.cfg.min_p95_ms,
                "ms",
                ids,
            ),
            evidence(KIND, key, "p50_ms", "metric", "its median duration", p50, None, "ms", ids),
            ratio_evidence(
                KIND, key, "db_time_share", "metric", "its share of all DB time in the window", share, ids
            ),
            evidence(
                KIND,
                key,
                "calls",
                "metric",
                "calls of the statement in the window",
                float(r["calls"]),
                None,
                "calls",
                ids,
            ),
        )
        first, last = r["first"], r["last"]
        return Finding(
            kind=KIND,
            category="performance",
            title=f"Slow query: {stmt[:70]!r} on {db} (p95 {p95:.0f} ms, {share:.0%} of DB time)",
            key=key,
            entities=(node(service), node(db, "database"), edge(service, db)),
            evidence=ev,
            impact=Impact(
                int(r["traces"]),
                max(service_traces, int(r["traces"])),
                latency_ms=round(p95, 3),
                duration_s=round((last - first).total_seconds(), 3),
                at_entry=False,
            ),
            recommendations=recommend(
                f"Look at the plan of {stmt[:80]!r} on {db} (EXPLAIN ANALYZE): add the missing index, "
                "limit the rows it reads, or cache its result",
                f"its p95 is {p95:.0f} ms and it takes {share:.0%} of the DB time of the window",
                ev,
            ),
            facts={
                "p95_ms": round(p95, 1),
                "p50_ms": round(p50, 1),
                "db_time_share": round(share, 3),
                "statement": stmt,
            },
        )
