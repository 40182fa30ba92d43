"""``chatty_dependency``: two services exchanging many calls per request (≥ 10 by default)."""

from __future__ import annotations

from collections import Counter, defaultdict

from otel_ai.analysis.insights.detectors.common import edge, evidence, key_of, node, recommend
from otel_ai.analysis.insights.detectors.config import ChattyDependencyConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.sample import SampleDetector, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

KIND: Kind = "chatty_dependency"


class ChattyDependencyDetector(SampleDetector[ChattyDependencyConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        seen: dict[tuple[str, str], Hits] = defaultdict(Hits)  # every trace with the edge
        chatty: dict[tuple[str, str], Hits] = defaultdict(Hits)  # traces at or above the threshold
        for trace in sample.traces:
            per_edge: Counter[tuple[str, str]] = Counter()
            ops: dict[tuple[str, str], set[str]] = defaultdict(set)
            for s in trace.spans:
                if s.is_client and s.callee_kind == "service" and s.callee != s.service:
                    per_edge[(s.service, s.callee)] += 1
                    ops[(s.service, s.callee)].add(s.key or s.name)
            for e, n in per_edge.items():
                seen[e].add(trace, trace.root.start, calls=n)
                if n >= self.cfg.min_calls_per_request:
                    chatty[e].add(trace, trace.root.start, calls=n, operations=len(ops[e]))
        out = []
        for e, h in sorted(chatty.items()):
            if seen[e].mean("calls") < self.cfg.min_calls_per_request:
                continue
            if sample.scaled(h.traces.values()) < self.cfg.min_traces:
                continue
            out.append(self._finding(sample, e, h, seen[e]))
        return out

    def _finding(self, sample: TraceSample, e: tuple[str, str], h: Hits, all_: Hits) -> Finding:
        caller, callee = e
        key = key_of(caller, callee)
        per_req = all_.mean("calls")
        ids = h.trace_ids(self.n_examples)
        ev = (
            evidence(
                KIND,
                key,
                "calls_per_request",
                "metric",
                f"calls from {caller} to {callee} per request that uses the edge (mean)",
                per_req,
                1.0,
                "calls",
                ids,
            ),
            evidence(
                KIND,
                key,
                "distinct_operations",
                "span_pattern",
                "distinct operations called per chatty request (mean)",
                h.mean("operations"),
                None,
                "operations",
                ids,
            ),
        )
        return Finding(
            kind=KIND,
            category="architecture",
            title=f"Chatty dependency: {caller} makes {per_req:.0f} calls to {callee} per request",
            key=key,
            entities=(node(caller), node(callee), edge(caller, callee)),
            evidence=ev,
            impact=impact(sample, h),
            recommendations=recommend(
                f"Give {callee} a coarser API for what {caller} needs per request (one aggregate call), "
                f"or cache the answers in {caller}",
                f"{per_req:.0f} round trips per request couple {caller} tightly to {callee}",
                ev,
            ),
            facts={"calls_per_request": round(per_req, 2)},
        )
