"""``critical_path_hotspot``: per busy entry operation, the share of the critical path each
service or peer holds; speaks when one dependency holds at least ``min_share``.

The critical path follows Jaeger's algorithm: from a span's end, step back to the last-finishing
child that ended before the cursor, walk it the same way, continue from its start; the gaps are
the span's own time. Children are clipped to their parent; a CONSUMER under a PRODUCER does not
block it. Time of a client span without an instrumented child belongs to its peer (a database,
a queue, an external API), so a slow query shows as the database's share.
"""

from __future__ import annotations

from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import evidence, key_of, node, op, ratio_evidence, recommend
from otel_ai.analysis.insights.detectors.config import CriticalPathConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.sample import SampleDetector, SpanRow, Trace, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

KIND: Kind = "critical_path_hotspot"


def _holder(s: SpanRow) -> tuple[str, str]:
    if s.is_client and s.callee and s.callee_kind != "service":
        return s.callee, s.callee_kind
    return s.service, "service"


def critical_path(root: SpanRow) -> dict[tuple[str, str], int]:
    """Nanoseconds of the root's critical path held by each (node id, node kind)."""
    held: dict[tuple[str, str], int] = defaultdict(int)
    stack: list[tuple[SpanRow, int, int]] = [(root, root.start, root.end)]
    while stack:
        span, lo, hi = stack.pop()
        who = _holder(span)
        cursor = hi
        kids = [c for c in span.children if not (span.kind == "Producer" and c.kind == "Consumer")]
        kids.sort(key=lambda c: (c.end, c.start), reverse=True)
        for c in kids:
            c_lo, c_hi = max(c.start, lo), min(c.end, hi)
            if c_hi <= c_lo or c_hi > cursor:
                continue
            held[who] += cursor - c_hi
            stack.append((c, c_lo, c_hi))
            cursor = c_lo
        held[who] += max(0, cursor - lo)
    return held


class CriticalPathDetector(SampleDetector[CriticalPathConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        by_entry: dict[str, list[Trace]] = defaultdict(list)
        for t in sample.traces:
            by_entry[t.entry].append(t)
        out = []
        for entry, traces in sorted(by_entry.items()):
            if len(traces) < self.cfg.min_entry_traces:
                continue
            total = sum(t.root.duration for t in traces)
            held: dict[tuple[str, str], int] = defaultdict(int)
            hits: dict[tuple[str, str], Hits] = defaultdict(Hits)
            for t in traces:
                path = critical_path(t.root)
                length = max(1, t.root.duration)
                for who, ns in path.items():
                    held[who] += ns
                    if ns / length >= self.cfg.min_share:
                        hits[who].add(t, t.root.start, held_ms=ns / 1e6, share=ns / length)
            for who, ns in sorted(held.items()):
                if who[0] == traces[0].root.service and who[1] == "service":
                    continue  # the entry service's own time is not a dependency
                share = ns / total if total else 0.0
                mean_ms = ns / len(traces) / 1e6
                h = hits.get(who)
                if share < self.cfg.min_share or mean_ms < self.cfg.min_held_ms or h is None:
                    continue
                if sample.scaled(h.traces.values()) < self.cfg.min_traces:
                    continue
                out.append(self._finding(sample, entry, who, share, mean_ms, total / len(traces) / 1e6, h))
        return out

    def _finding(
        self,
        sample: TraceSample,
        entry: str,
        who: tuple[str, str],
        share: float,
        mean_ms: float,
        entry_ms: float,
        h: Hits,
    ) -> Finding:
        holder, holder_kind = who
        service, _, operation = entry.partition(":")
        key = key_of(entry, holder)
        ids = h.trace_ids(self.n_examples)
        ev = (
            ratio_evidence(
                KIND,
                key,
                "critical_path_share",
                "span_pattern",
                f"share of the critical path of {entry!r} held by {holder}",
                share,
                ids,
            ),
            evidence(
                KIND,
                key,
                "held_ms",
                "metric",
                f"critical-path time held by {holder} per request (mean)",
                mean_ms,
                None,
                "ms",
                ids,
            ),
            evidence(
                KIND, key, "entry_ms", "metric", f"duration of {entry!r} (mean)", entry_ms, None, "ms", ids
            ),
        )
        return Finding(
            kind=KIND,
            category="performance",
            title=f"Critical-path hotspot: {holder} holds {share:.0%} of {entry}",
            key=key,
            entities=(node(holder, holder_kind), op(service, operation), node(service)),
            evidence=ev,
            impact=impact(sample, h, latency_ms=mean_ms, entries=[entry]),
            recommendations=recommend(
                f"Speed up {holder} on the {entry!r} path first (cache, index, parallelise, or take it off "
                "the request path); optimising anything else there barely changes the latency",
                f"{holder} holds {share:.0%} of the critical path ({mean_ms:.0f} ms of {entry_ms:.0f} ms)",
                ev,
            ),
            facts={"share": round(share, 3), "held_ms": round(mean_ms, 1), "entry_ms": round(entry_ms, 1)},
        )
