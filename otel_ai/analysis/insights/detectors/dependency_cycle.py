"""``dependency_cycle``: a cycle in the service graph (any length), with its edges.

Edges are service → service calls seen in the trace sample, producer → consumer services of a
queue (paired by parent or span link, as ``queue_lag`` pairs them: a linked consumer starts a trace
of its own, which the sample cannot join to its producer), plus the topology snapshot's service
edges when the run has one. Each strongly connected component of two or more services is one
finding (Tarjan's algorithm); its edges are the component's internal edges. The traces that show a
cycle cross two or more of its edges; one closing through a queue cannot be in one trace, so there
a trace crossing any of its edges counts.
"""

from __future__ import annotations

from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import edge, evidence, key_of, node, recommend
from otel_ai.analysis.insights.detectors.config import DependencyCycleConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.queue_lag import queue_pairs
from otel_ai.analysis.insights.detectors.sample import SampleDetector, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

KIND: Kind = "dependency_cycle"


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with two or more nodes (iterative Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


class DependencyCycleDetector(SampleDetector[DependencyCycleConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        calls: dict[tuple[str, str], float] = defaultdict(float)
        traces_by_edge: dict[tuple[str, str], Hits] = defaultdict(Hits)
        for t in sample.traces:
            scale = sample.scale(t.entry)
            for s in t.spans:
                if s.is_client and s.callee_kind == "service" and s.callee != s.service:
                    calls[(s.service, s.callee)] += scale
                    traces_by_edge[(s.service, s.callee)].add(t, t.root.start)
        queued: set[tuple[str, str]] = set()
        for r in queue_pairs(ctx, self.n_examples):
            pair = (str(r["producer"]), str(r["consumer"]))
            if r["cur"] and pair[0] != pair[1]:
                calls[pair] = max(calls[pair], float(r["messages"]))
                queued.add(pair)
        for e in (ctx.topology or {}).get("edges", []) or []:
            if e.get("target_kind", "service") == "service" and e.get("source") and e.get("target"):
                pair = (str(e["source"]), str(e["target"]))
                if pair[0] != pair[1]:
                    calls[pair] = max(calls[pair], float(e.get("call_count") or 0))
        graph: dict[str, set[str]] = defaultdict(set)
        for (a, b), n in calls.items():
            if n >= self.cfg.min_calls:
                graph[a].add(b)
        out = []
        for comp in components(graph):
            members = set(comp)
            edges = sorted((a, b) for (a, b) in calls if a in members and b in members and b in graph[a])
            h = Hits()
            per_trace: dict[str, int] = defaultdict(int)
            for e in edges:
                for tid in traces_by_edge[e].traces:
                    per_trace[tid] += 1
            need = 1 if any(e in queued for e in edges) else 2
            for e in edges:
                for tid, t in traces_by_edge[e].traces.items():
                    if per_trace[tid] >= need:
                        h.add(t, t.root.start)
            if sample.scaled(h.traces.values()) < self.cfg.min_traces:
                continue
            out.append(self._finding(sample, comp, edges, calls, h, need))
        return out

    def _finding(
        self,
        sample: TraceSample,
        comp: list[str],
        edges: list[tuple[str, str]],
        calls: dict[tuple[str, str], float],
        h: Hits,
        need: int,
    ) -> Finding:
        key = key_of(*comp)
        ids = h.trace_ids(self.n_examples)
        ev = [
            evidence(
                KIND,
                key,
                f"calls:{a}->{b}",
                "topology",
                f"calls {a} -> {b} in the window",
                round(calls[(a, b)]),
                None,
                "calls",
                ids,
            )
            for a, b in edges
        ]
        ev.append(
            evidence(
                KIND,
                key,
                "traces_through_cycle",
                "trace",
                "sampled traces crossing "
                + (
                    "an edge of the cycle (it closes through a queue)"
                    if need == 1
                    else "two or more edges of the cycle"
                ),
                float(len(h.traces)),
                None,
                "traces",
                ids,
            )
        )
        text = " -> ".join([*comp, comp[0]]) if len(comp) == 2 else ", ".join(f"{a}->{b}" for a, b in edges)
        return Finding(
            kind=KIND,
            category="architecture",
            title=f"Dependency cycle between {', '.join(comp)}",
            key=key,
            entities=(*(node(s) for s in comp), *(edge(a, b) for a, b in edges)),
            evidence=tuple(ev),
            impact=impact(sample, h),
            recommendations=recommend(
                f"Break the cycle {text}: move the shared logic into one of them, or turn the call back "
                "into an event; a cycle lets one slow service stall all of them and blocks independent deploys",
                f"{len(comp)} services call each other in a loop",
                ev,
            ),
            facts={"services": ",".join(comp), "edges": len(edges)},
        )
