"""``fan_out``: one span with at least ``min_concurrent`` downstream calls in flight at once."""

from __future__ import annotations

from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import evidence, key_of, node, op, recommend
from otel_ai.analysis.insights.detectors.config import FanOutConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.sample import SampleDetector, SpanRow, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

KIND: Kind = "fan_out"


def max_in_flight(calls: list[SpanRow]) -> int:
    """The largest number of calls overlapping at one instant (sweep over start/end events)."""
    events = sorted([(c.start, 1) for c in calls] + [(c.end, -1) for c in calls])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


class FanOutDetector(SampleDetector[FanOutConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        hits: dict[tuple[str, str], Hits] = defaultdict(Hits)
        for trace in sample.traces:
            for parent in trace.spans:
                calls = [c for c in parent.children if c.is_client and c.callee]
                if len(calls) < self.cfg.min_concurrent:
                    continue
                width = max_in_flight(calls)
                if width < self.cfg.min_concurrent:
                    continue
                h = hits[(parent.service, parent.name)]
                h.add(
                    trace, parent.start, concurrent=width, calls=len(calls), parent_ms=parent.duration / 1e6
                )
                peers: dict[str, str] = h.extra.setdefault("peers", {})  # type: ignore[assignment]
                for c in calls:
                    peers[c.callee] = c.callee_kind
        return [
            self._finding(sample, k, h)
            for k, h in sorted(hits.items())
            if sample.scaled(h.traces.values()) >= self.cfg.min_traces
        ]

    def _finding(self, sample: TraceSample, k: tuple[str, str], h: Hits) -> Finding:
        service, parent_op = k
        key = key_of(service, parent_op)
        peers: dict[str, str] = h.extra["peers"]  # type: ignore[assignment]
        names = sorted(peers)
        width, calls = h.mean("concurrent"), h.mean("calls")
        ids = h.trace_ids(self.n_examples)
        ev = (
            evidence(
                KIND,
                key,
                "concurrent_calls",
                "span_pattern",
                f"downstream calls in flight at once under {service} {parent_op!r} (mean of the peak)",
                width,
                1.0,
                "calls",
                ids,
            ),
            evidence(
                KIND,
                key,
                "calls_per_span",
                "metric",
                f"downstream calls per {parent_op!r} span (mean)",
                calls,
                None,
                "calls",
                ids,
            ),
        )
        return Finding(
            kind=KIND,
            category="architecture",
            title=f"Fan-out: {service} {parent_op} makes {width:.0f} concurrent calls to {', '.join(names[:3])}",
            key=key,
            entities=(node(service), op(service, parent_op), *(node(p, peers[p]) for p in names[:10])),
            evidence=ev,
            impact=impact(sample, h),
            recommendations=recommend(
                f"Bound the concurrency of {service} {parent_op!r} or replace the per-item calls with one "
                "batch call; its tail latency is the slowest of the fan-out",
                f"{width:.0f} calls in flight per request multiply load on {', '.join(names[:3])}",
                ev,
            ),
            facts={"concurrent_calls": round(width, 1), "calls_per_span": round(calls, 1)},
        )
