"""``error_propagation``: in traces failing at the entry point, the origin is the deepest erroring
span whose children did not error; the finding is the chain from it up to the entry, with the
share of the entry's errors it explains."""

from __future__ import annotations

from collections import Counter, defaultdict

from otel_ai.analysis.insights.detectors.common import evidence, key_of, node, op, ratio_evidence, recommend
from otel_ai.analysis.insights.detectors.config import ErrorPropagationConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.sample import SampleDetector, SpanRow, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Entity, Finding, Kind, RootCause

KIND: Kind = "error_propagation"


def origin(root: SpanRow) -> tuple[SpanRow, list[SpanRow]]:
    """The deepest erroring span reached through erroring spans, and the path root → it."""
    best: tuple[int, int, SpanRow, list[SpanRow]] | None = None
    stack: list[tuple[SpanRow, list[SpanRow]]] = [(root, [root])]
    while stack:
        span, path = stack.pop()
        failing = [c for c in span.children if c.error]
        if not failing:
            rank = (len(path), -span.start)
            if best is None or rank > best[:2]:
                best = (rank[0], rank[1], span, path)
            continue
        stack.extend((c, [*path, c]) for c in failing)
    assert best is not None
    return best[2], best[3]


def chain_of(path: list[SpanRow]) -> tuple[str, ...]:
    """Node ids from the entry to the origin (consecutive repeats folded)."""
    out: list[str] = []
    for s in path:
        out.append(s.service)
    last = path[-1]
    if last.is_client and last.callee and last.callee_kind != "service":
        out.append(last.callee)
    folded = [n for i, n in enumerate(out) if i == 0 or n != out[i - 1]]
    return tuple(folded)


class ErrorPropagationDetector(SampleDetector[ErrorPropagationConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        errors_by_entry: Counter[str] = Counter()
        sampled_by_entry: Counter[str] = Counter()
        hits: dict[tuple[str, str, str, str], Hits] = defaultdict(Hits)
        for t in sample.traces:
            sampled_by_entry[t.entry] += 1
            if not t.root.error:
                continue
            errors_by_entry[t.entry] += 1
            span, path = origin(t.root)
            callee, callee_kind = (span.callee, span.callee_kind) if span.is_client else ("", "")
            h = hits[(span.service, span.name, callee, callee_kind)]
            h.add(t, t.root.start)
            chains: Counter[tuple[str, ...]] = h.extra.setdefault("chains", Counter())  # type: ignore[assignment]
            chains[chain_of(path)] += 1
        out = []
        for k, h in sorted(hits.items()):
            entries = h.entries
            errors = sum(errors_by_entry[e] for e in entries)
            sampled = sum(sampled_by_entry[e] for e in entries)
            if sample.scaled(h.traces.values()) < self.cfg.min_traces:
                continue
            if len(h.traces) < self.cfg.min_error_rate * sampled:
                continue
            out.append(self._finding(sample, k, h, len(h.traces) / errors, len(h.traces) / sampled))
        return out

    def _finding(
        self, sample: TraceSample, k: tuple[str, str, str, str], h: Hits, explained: float, rate: float
    ) -> Finding:
        service, operation, callee, callee_kind = k
        chains: Counter[tuple[str, ...]] = h.extra["chains"]  # type: ignore[assignment]
        chain = chains.most_common(1)[0][0]
        key = key_of(service, operation, callee) if callee else key_of(service, operation)
        where = f"{service} {operation!r}" + (f" calling {callee}" if callee else "")
        ids = h.trace_ids(self.n_examples)
        ev = (
            ratio_evidence(
                KIND,
                key,
                "explained_share",
                "metric",
                f"share of the entry errors whose origin is {where}",
                explained,
                ids,
            ),
            ratio_evidence(
                KIND,
                key,
                "error_rate",
                "metric",
                "share of the entry's requests failing this way",
                rate,
                ids,
                baseline=0.0,
            ),
            evidence(
                KIND,
                key,
                "chain",
                "trace",
                "the error's path from the entry to its origin",
                " -> ".join(chain),
                None,
                "",
                ids,
            ),
        )
        origin_entity = (
            node(callee, callee_kind) if callee and callee_kind != "service" else op(service, operation)
        )
        entities: list[Entity] = [op(service, operation), *(node(n) for n in chain if n != callee)]
        if callee:
            entities.append(node(callee, callee_kind))
        return Finding(
            kind=KIND,
            category="reliability",
            title=f"Errors from {where} propagate to {chain[0]} ({explained:.0%} of its errors)",
            key=key,
            entities=tuple(dict.fromkeys(entities)),
            evidence=ev,
            impact=impact(sample, h, error_share=explained),
            root_cause=RootCause(origin_entity, "errors", (ev[0].id, ev[2].id)),
            recommendations=recommend(
                f"Fix the failure at {where} first; then decide where it should stop: handle it in "
                f"{chain[-2] if len(chain) > 1 else service} (fallback, degraded answer) instead of failing "
                f"all the way up to {chain[0]}",
                f"{explained:.0%} of the failing requests start there and fail along {' -> '.join(chain)}",
                ev,
            ),
            facts={
                "explained_share": round(explained, 3),
                "error_rate": round(rate, 4),
                "chain": " -> ".join(chain),
            },
        )
