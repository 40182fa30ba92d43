"""Per-service variants across instances, shared by ``encoding_drift`` and ``sdk_drift``: one
service whose instances export with different OTLP encodings, or different SDKs."""

from __future__ import annotations

from typing import Any

from otel_ai.analysis.insights.detectors.common import evidence, node, recommend
from otel_ai.analysis.insights.detectors.config import DriftConfig
from otel_ai.analysis.insights.detectors.resources import resources
from otel_ai.analysis.insights.model import DetectContext, Finding, Impact, Kind


def drifts(ctx: DetectContext, by: str, cfg: DriftConfig) -> list[tuple[str, list[dict[str, Any]]]]:
    """(service, its variants of ``by``, most spans first) for every service with two or more."""
    out = []
    for svc, rows in sorted(resources(ctx).variants(by).items()):
        kept = [r for r in rows if r["variant"] and r["spans"] >= cfg.min_spans]
        if len(kept) >= 2:
            kept.sort(key=lambda r: (-r["spans"], r["variant"]))
            out.append((svc, kept))
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
        recommendations=recommend(
            action.format(service=svc, major=major["variant"]),
            f"{len(minors)} other {what}(s) beside {major['variant']} for the same service",
            ev,
        ),
        facts={"variants": names, "majority": str(major["variant"])},
    )
