"""``n_plus_one``: one parent span issuing the same normalised statement / route to one peer, in
sequence, N times (Sentry's detector: at least 5 calls, together at least 50 ms)."""

from __future__ import annotations

import itertools
from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import edge, evidence, key_of, node, op
from otel_ai.analysis.insights.detectors.config import NPlusOneConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.sample import SampleDetector, SpanRow, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind, Recommendation

KIND: Kind = "n_plus_one"
# Consecutive calls may overlap by this much and still count as sequential (clock skew).
OVERLAP_TOLERANCE_NS = 1_000_000


def sequential(calls: list[SpanRow]) -> bool:
    ordered = sorted(calls, key=lambda c: c.start)
    return all(b.start >= a.end - OVERLAP_TOLERANCE_NS for a, b in itertools.pairwise(ordered))


class NPlusOneDetector(SampleDetector[NPlusOneConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        hits: dict[tuple[str, str, str, str, str], Hits] = defaultdict(Hits)
        for trace in sample.traces:
            for parent in trace.spans:
                groups: dict[tuple[str, str, str], list[SpanRow]] = defaultdict(list)
                for c in parent.children:
                    if c.is_client and c.key and c.callee:
                        groups[(c.callee, c.callee_kind, c.key)].append(c)
                for (callee, callee_kind, stmt), calls in groups.items():
                    if len(calls) < self.cfg.min_calls or any(c.error for c in calls):
                        continue  # failed attempts repeated are retries, not N+1
                    total_ms = sum(c.duration for c in calls) / 1e6
                    if total_ms < self.cfg.min_total_ms or not sequential(calls):
                        continue
                    k = (parent.service, parent.name, callee, callee_kind, stmt)
                    hits[k].add(trace, parent.start, calls=len(calls), total_ms=total_ms)
        return [self._finding(sample, k, h) for k, h in sorted(hits.items()) if self._speaks(sample, h)]

    def _speaks(self, sample: TraceSample, h: Hits) -> bool:
        return sample.scaled(h.traces.values()) >= self.cfg.min_traces

    def _finding(self, sample: TraceSample, k: tuple[str, str, str, str, str], h: Hits) -> Finding:
        service, parent_op, callee, callee_kind, stmt = k
        key = key_of(service, parent_op, callee, stmt)
        calls, total = h.mean("calls"), h.mean("total_ms")
        ids = h.trace_ids(self.n_examples)
        ev = (
            evidence(
                KIND,
                key,
                "calls_per_parent",
                "span_pattern",
                f"{stmt!r} calls to {callee} per {service} {parent_op!r} span (mean)",
                calls,
                1.0,
                "calls",
                ids,
            ),
            evidence(
                KIND,
                key,
                "total_ms",
                "metric",
                f"time spent in those calls per {parent_op!r} span (mean)",
                total,
                total / calls,
                "ms",
                ids,
            ),
            evidence(
                KIND,
                key,
                "affected_traces",
                "metric",
                "sampled traces showing the pattern",
                float(len(h.traces)),
                None,
                "traces",
                ids,
            ),
        )
        ev_ids = tuple(e.id for e in ev)
        return Finding(
            kind=KIND,
            category="performance",
            title=f"N+1 calls: {service} {parent_op} repeats {stmt[:60]!r} {calls:.0f}x against {callee}",
            key=key,
            entities=(
                node(service),
                op(service, parent_op),
                node(callee, callee_kind),
                edge(service, callee),
            ),
            evidence=ev,
            impact=impact(sample, h, latency_ms=total - total / calls),
            recommendations=(
                Recommendation(
                    f"Batch the {calls:.0f} {stmt[:80]!r} calls from {service} into one request "
                    f"(a single query with IN (...) or a bulk endpoint), or load the rows with the parent",
                    f"each {parent_op!r} span waits for {calls:.0f} round trips to {callee} in a row",
                    ev_ids,
                ),
            ),
            facts={
                "calls_per_parent": round(calls, 2),
                "total_ms": round(total, 2),
                "statement": stmt,
                "callee": callee,
                "parent_operation": parent_op,
            },
        )
