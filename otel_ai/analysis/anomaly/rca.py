"""Root-cause ranking over the service graph (docs/anomaly.md, "Root cause").

Primary rule: the *deepest anomalous dependency* — anomalous services none of whose (transitive)
callees are anomalous, earliest onset first. Personalized PageRank over the anomaly subgraph
(MicroRCA-style; numpy power iteration) orders the rest and breaks ties. A service whose only
evidence is latency with a flat self-time is a symptom of its dependency and is demoted. A pure
traffic surge has no root cause; a pure traffic drop points at the top-most service that dropped.

An *unreachable dependency* leaves no spans of its own to be abnormal (TraceAnomaly's "missing
call path"): its caller's calls per request to it fall while no callee of that caller shows
errors or self-time of its own. That callee (the largest drop first) is then ranked first.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

LATENCY = frozenset({"p50", "p95", "p99", "slow", "slow_far"})
OWN = frozenset(
    {"err", "self", "self_slow", "errors", "cfail", "lag", "self_far", "lag_far"}
)  # evidence that a service itself misbehaves
TRAFFIC = frozenset({"rate", "volume"})
SERVER_SIDE = frozenset({"err", "errors", "self", "self_slow", "slow", "self_far", "slow_far"})


def descendants(graph: dict[str, set[str]], node: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph.get(node, ()))
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(graph.get(n, ()))
    seen.discard(node)
    return seen


def personalized_pagerank(nodes: list[str], edges: Iterable[tuple[str, str]], score: dict[str, float],
                          *, alpha: float = 0.85, iters: int = 1000) -> dict[str, float]:  # fmt: skip
    """Random walk from symptoms towards causes: caller→callee weighted by the callee's score,
    backward edges at 0.1x, self-loops at 0.5x own score; personalization = anomaly scores."""
    idx = {n: i for i, n in enumerate(nodes)}
    k = len(nodes)
    if k == 0:
        return {}
    W = np.zeros((k, k))
    s = np.nan_to_num(np.array([max(score.get(n, 0.0), 0.0) for n in nodes]), nan=0.0, posinf=1e6)
    for a, b in edges:
        if a in idx and b in idx and a != b:
            W[idx[a], idx[b]] += s[idx[b]] + 1e-6
            W[idx[b], idx[a]] += 0.1 * (s[idx[a]] + 1e-6)
    W[np.arange(k), np.arange(k)] += 0.5 * s + 1e-6
    P = W / W.sum(axis=1, keepdims=True)
    p = s / s.sum() if s.sum() > 0 else np.full(k, 1.0 / k)
    r = np.full(k, 1.0 / k)
    for _ in range(iters):
        nxt = alpha * (r @ P) + (1 - alpha) * p
        if np.abs(nxt - r).sum() < 1e-10:
            r = nxt
            break
        r = nxt
    return {n: float(r[i]) for n, i in idx.items()}


def rank_root_causes(
    *,
    services: list[str],
    edges: Iterable[tuple[str, str]],
    score: dict[str, float],
    onset: dict[str, int],
    anomalous: set[str],
    top_metrics: dict[str, list[tuple[str, float]]],
    threshold: float,
    dropped_calls: dict[str, list[tuple[str, float]]] | None = None,
    retrying: dict[str, list[str]] | None = None,
) -> list[dict[str, float | str]]:
    """``[{"service", "score"}]`` best first.

    ``score``: each service's peak calibrated score; ``onset``: its first abnormal window;
    ``top_metrics``: per service, (metric, signed deviation) of its abnormal features;
    ``dropped_calls``: per caller, (callee, signed deviation) of abnormal falls in calls per request;
    ``retrying``: per caller, the callees it re-sends calls to abnormally often (a retry storm: the
    caller amplifies, unless the callee shows errors of its own — then the callee is the cause).
    """
    edges = list(edges)
    graph: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        callers.setdefault(b, set()).add(a)
    metrics = {s: {m for m, _ in top_metrics.get(s, [])} for s in anomalous}
    if anomalous and all(ms <= TRAFFIC for ms in metrics.values()):
        # Which way did the traffic go? Weigh the moves, not the count of services that moved.
        ups = sum(v for s in anomalous for m, v in top_metrics.get(s, []) if m in TRAFFIC and v > 0)
        downs = sum(-v for s in anomalous for m, v in top_metrics.get(s, []) if m in TRAFFIC and v < 0)
        if ups >= downs:
            return []  # a traffic surge (flash crowd) is not caused by a service
        # A traffic drop enters at the edge: blame the entry point(s) upstream of what dropped
        # ("volume down at the ingress"), even if the entry's own dip is below its threshold.
        ups_of: set[str] = set()
        for s in anomalous:
            ups_of |= descendants(callers, s)
        entries = sorted(
            (s for s in ups_of | anomalous if not callers.get(s)), key=lambda s: (-score.get(s, 0.0), s)
        )
        tops = [s for s in anomalous if not (callers.get(s, set()) & anomalous) and s not in entries]
        order = entries + sorted(tops, key=lambda s: (-score.get(s, 0.0), s))
        rest = sorted(anomalous - set(order), key=lambda s: -score.get(s, 0.0))
        return _scored(order + rest)
    ppr = personalized_pagerank(services, edges, {s: score.get(s, 0.0) / threshold for s in services})

    def symptom_only(s: str) -> bool:
        ms = metrics.get(s, set())
        return bool(ms) and ms <= LATENCY | TRAFFIC | {"cpr", "spans_per_trace", "childless"} and not ms & OWN

    own = {s for s, ms in metrics.items() if ms & OWN}
    # Server-side evidence of the callee (a failing call alone may be the caller's timeout).
    # Failed logical calls (every attempt failed) are the callee's evidence too: re-sends that
    # never get through amplify a failing callee, they do not cause it.
    served = {
        s for s, ms in top_metrics.items() if any(m in SERVER_SIDE | {"cfail"} and v > 0 for m, v in ms)
    }
    # A callee with no evidence of its own whose "refused" attempts are the very ones its caller
    # re-sent (an uninstrumented peer, the logical calls still succeeding) is not unreachable:
    # the re-sends are the caller's evidence, and the callee must not outrank it.
    resending = retrying or {}
    unreachable: list[str] = []
    for caller, drops in sorted((dropped_calls or {}).items()):
        if caller in anomalous and not (graph.get(caller, set()) & own):
            unreachable += [t for t, _ in drops if t not in unreachable  # caller's order: most likely first
                            and (t in served or t not in resending.get(caller, []))]  # fmt: skip
    retry_first = [c for c, callees in sorted(resending.items())
                   if c in anomalous and c not in unreachable and not set(callees) & served]  # fmt: skip
    unreachable += retry_first
    anomalous = anomalous | set(unreachable)
    # Services whose traffic only fell are a consequence when something else has evidence of its
    # own (the callees of an unreachable service lose their calls): they rank after the others.
    fell = {s for s in anomalous if metrics.get(s) and metrics[s] <= TRAFFIC
            and all(v < 0 for m, v in top_metrics.get(s, []) if m in TRAFFIC)}  # fmt: skip
    if fell and anomalous - fell - set(unreachable):
        anomalous = anomalous - fell
    else:
        fell = set()
    # Deepest among the services with evidence of their own when there are any: a callee whose
    # only change is latency (a symptom, or the model smearing a caller's slowdown) must not
    # outrank the caller whose own self-time moved.
    pool = {s for s in anomalous if metrics.get(s, set()) & OWN} or anomalous
    deepest = [s for s in pool if not (descendants(graph, s) & pool) and s not in unreachable]
    deepest.sort(key=lambda s: (symptom_only(s), onset.get(s, 1 << 62), -ppr.get(s, 0.0), s))
    others = sorted(
        anomalous - set(deepest) - set(unreachable), key=lambda s: (symptom_only(s), -ppr.get(s, 0.0), s)
    )
    tail = sorted(
        (s for s in services if s not in anomalous and s not in fell), key=lambda s: (-score.get(s, 0.0), s)
    )
    return _scored(unreachable + deepest + others + sorted(fell) + tail[:5])


def _scored(order: list[str]) -> list[dict[str, float | str]]:
    n = len(order)
    return [{"service": s, "score": round(1.0 - i / max(n, 1), 3)} for i, s in enumerate(order)]
