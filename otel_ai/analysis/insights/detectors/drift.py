"""Per-service variants across instances, shared by ``encoding_drift`` and ``sdk_drift``: one
service whose instances export with different OTLP encodings, or different SDKs."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from otel_ai.analysis.insights.detectors.common import evidence, node, params
from otel_ai.analysis.insights.detectors.config import DriftConfig
from otel_ai.analysis.insights.model import DetectContext, Finding, Impact, Kind, Recommendation

_INST = "ResourceAttributes['service.instance.id']"
VARIANTS_SQL = """
SELECT ServiceName AS service, {variant} AS variant, count() AS spans, uniq(TraceId) AS traces,
       uniqExact({inst}) AS instances, arraySort(groupUniqArray(3)({inst})) AS instance_ids,
       min(Timestamp) AS first, max(Timestamp) AS last, arraySort(groupUniqArray(5)(TraceId)) AS examples
FROM {{db:Identifier}}.otel_traces
PREWHERE Timestamp >= {{start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}}
GROUP BY service, variant
"""


def variants_sql(variant_expr: str) -> str:
    return VARIANTS_SQL.format(variant=variant_expr, inst=_INST)


def drifts(ctx: DetectContext, sql: str, cfg: DriftConfig) -> list[tuple[str, list[dict[str, Any]]]]:
    """(service, its variants, most spans first) for every service with two or more variants."""
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ctx.storage.query_dicts(sql, params(ctx)):
        if r["variant"] and r["spans"] >= cfg.min_spans:
            by_service[r["service"]].append(r)
    out = []
    for svc, rows in sorted(by_service.items()):
        if len(rows) >= 2:
            rows.sort(key=lambda r: (-r["spans"], r["variant"]))
            out.append((svc, rows))
    return out


def finding(
    kind: Kind, svc: str, rows: list[dict[str, Any]], what: str, action: str, min_traces: int
) -> Finding | None:
    major, minors = rows[0], rows[1:]
    affected = sum(int(r["traces"]) for r in minors)
    if affected < min_traces:
        return None
    total = sum(int(r["traces"]) for r in rows)
    ev = tuple(
        evidence(
            kind,
            svc,
            f"{what}:{r['variant']}",
            "metric",
            f"spans of {svc} exported with {what} {r['variant']} (instances: "
            f"{', '.join(str(i)[:36] for i in r['instance_ids']) or 'unnamed'})",
            float(r["spans"]),
            None,
            "spans",
            tuple(r["examples"]),
        )
        for r in rows
    )
    names = ", ".join(str(r["variant"]) for r in rows)
    first = min(r["first"] for r in rows)
    last = max(r["last"] for r in rows)
    return Finding(
        kind=kind,
        category="pipeline",
        title=f"{what[0].upper()}{what[1:]} drift: {svc} instances export with {names}",
        key=svc,
        entities=(node(svc),),
        evidence=ev,
        impact=Impact(affected, total, duration_s=round((last - first).total_seconds(), 3)),
        recommendations=(
            Recommendation(
                action.format(service=svc, major=major["variant"]),
                f"{len(minors)} other {what}(s) beside {major['variant']} for the same service",
                tuple(e.id for e in ev),
            ),
        ),
        facts={"variants": names, "majority": str(major["variant"])},
    )
