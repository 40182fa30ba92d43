"""``sequential_calls``: sibling calls to different peers/operations made one after the other
that could run side by side: parallel execution would save at least ``min_saving_ms`` and
``min_saving_share`` of the parent span (saving = sum of the chain's durations - its longest)."""

from __future__ import annotations

from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import evidence, key_of, node, op, recommend
from otel_ai.analysis.insights.detectors.config import SequentialCallsConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.n_plus_one import OVERLAP_TOLERANCE_NS
from otel_ai.analysis.insights.detectors.sample import SampleDetector, SpanRow, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

KIND: Kind = "sequential_calls"


def chains(calls: list[SpanRow]) -> list[list[SpanRow]]:
    """Maximal runs of non-overlapping calls (each starts after the previous one ended)."""
    out: list[list[SpanRow]] = []
    for c in sorted(calls, key=lambda c: (c.start, c.span)):
        if out and c.start >= out[-1][-1].end - OVERLAP_TOLERANCE_NS:
            out[-1].append(c)
        else:
            out.append([c])
    return out


class SequentialCallsDetector(SampleDetector[SequentialCallsConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        # One finding per parent operation: which of its calls run in a row varies per request
        # (calls made on some requests only), so the peers are counted, not part of the key.
        hits: dict[tuple[str, str], Hits] = defaultdict(Hits)
        for trace in sample.traces:
            for parent in trace.spans:
                calls = [c for c in parent.children if c.is_client and c.callee and c.kind == "Client"]
                if len(calls) < self.cfg.min_calls:
                    continue
                for chain in chains(calls):
                    # One call per (peer, operation): a repeated call is N+1 or a retry, not this.
                    distinct = {(c.callee, c.key) for c in chain}
                    if len(distinct) < self.cfg.min_calls or len(distinct) < len(chain):
                        continue
                    durs = [c.duration for c in chain]
                    saving = (sum(durs) - max(durs)) / 1e6
                    if (
                        saving < self.cfg.min_saving_ms
                        or saving < self.cfg.min_saving_share * parent.duration / 1e6
                    ):
                        continue
                    k = (parent.service, parent.name)
                    hits[k].add(
                        trace,
                        parent.start,
                        saving_ms=saving,
                        chain_ms=sum(durs) / 1e6,
                        parent_ms=parent.duration / 1e6,
                        calls=len(chain),
                    )
                    h = hits[k]
                    kinds: dict[str, str] = h.extra.setdefault("kinds", {})  # type: ignore[assignment]
                    counts: dict[str, int] = h.extra.setdefault("peer_chains", {})  # type: ignore[assignment]
                    for callee, callee_kind in {c.callee: c.callee_kind for c in chain}.items():
                        kinds.setdefault(callee, callee_kind)
                        counts[callee] = counts.get(callee, 0) + 1
        return [
            self._finding(sample, k, h)
            for k, h in sorted(hits.items())
            if sample.scaled(h.traces.values()) >= self.cfg.min_traces
        ]

    def _finding(self, sample: TraceSample, k: tuple[str, str], h: Hits) -> Finding:
        service, parent_op = k
        key = key_of(service, parent_op)
        # The usual peers (in at least a fifth as many chains as the most frequent one), most frequent first.
        counts: dict[str, int] = h.extra.get("peer_chains", {})  # type: ignore[assignment]
        top = max(counts.values(), default=0)
        peers = tuple(sorted((p for p, n in counts.items() if n >= 0.2 * top), key=lambda p: (-counts[p], p)))
        saving, chain_ms, parent_ms = h.mean("saving_ms"), h.mean("chain_ms"), h.mean("parent_ms")
        ids = h.trace_ids(self.n_examples)
        kinds: dict[str, str] = h.extra.get("kinds", {})  # type: ignore[assignment]
        ev = (
            evidence(
                KIND,
                key,
                "sequential_ms",
                "span_pattern",
                f"time {service} {parent_op!r} spends calling {', '.join(peers)} one after the other (mean)",
                chain_ms,
                chain_ms - saving,
                "ms",
                ids,
            ),
            evidence(
                KIND,
                key,
                "saving_ms",
                "metric",
                "time saved if those calls ran in parallel (mean)",
                saving,
                None,
                "ms",
                ids,
            ),
            evidence(
                KIND,
                key,
                "parent_ms",
                "metric",
                f"duration of the {parent_op!r} span (mean)",
                parent_ms,
                parent_ms - saving,
                "ms",
                ids,
            ),
        )
        return Finding(
            kind=KIND,
            category="performance",
            title=f"Sequential calls: {service} {parent_op} calls {', '.join(peers)} one after another",
            key=key,
            entities=(node(service), op(service, parent_op), *(node(p, kinds.get(p, "")) for p in peers)),
            evidence=ev,
            impact=impact(sample, h, latency_ms=saving),
            recommendations=recommend(
                f"Issue the calls from {service} {parent_op!r} to {', '.join(peers)} concurrently "
                "(async / futures) if they do not depend on each other's results",
                f"parallel execution would save about {saving:.0f} ms of {parent_ms:.0f} ms",
                ev,
            ),
            facts={"saving_ms": round(saving, 1), "parent_ms": round(parent_ms, 1), "peers": ",".join(peers)},
        )
