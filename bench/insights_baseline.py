"""Naive per-kind rules of thumb over the generated spans: the baseline of ``insights_eval.py``.

Each rule is what one would write in a dashboard query without the detectors' structure
(no parent grouping, no normalisation, no sequence or concurrency test, no minimum of traces).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from otel_ai.demo import patterns
from otel_ai.demo.patterns import CLIENT, CONSUMER, PRODUCER, SERVER, PSpan

MS = 1_000_000


def _callee(s: PSpan, children: dict[bytes, list[PSpan]]) -> str:
    kids = [c for c in children.get(s.span_id, []) if c.instance.service != s.instance.service]
    if kids:
        return kids[0].instance.service
    a = s.attrs
    if a.get("db.system"):
        return a["db.system"] + (f"/{a['db.namespace']}" if a.get("db.namespace") else "")
    return str(a.get("server.address", ""))


def _first_hop(spans: list[PSpan], children: dict[bytes, list[PSpan]]) -> dict[bytes, str]:
    """Per trace, the service its entry calls first (the shop's ``web``)."""
    out: dict[bytes, str] = {}
    for s in spans:
        if s.parent_id or s.kind != SERVER:
            continue
        calls = sorted((c for c in children.get(s.span_id, []) if c.kind == CLIENT), key=lambda c: c.start)
        for c in calls:
            served = [k for k in children.get(c.span_id, []) if k.kind == SERVER]
            if served:
                out[s.trace_id] = served[0].instance.service
                break
    return out


def baseline(app: patterns.App) -> list[Any]:
    from bench.insights_eval import Found  # the scoring record

    start_ns = int(app.start.timestamp() * 1e9)
    cur = [s for s in app.spans if s.start >= start_ns]
    prev = [s for s in app.spans if s.start < start_ns]
    children: dict[bytes, list[PSpan]] = defaultdict(list)
    for s in app.spans:
        children[s.parent_id].append(s)
    out: list[Found] = []

    def say(kind: str, *entities: str) -> None:
        out.append(Found(kind, set(entities), primary=entities[0]))

    by_trace: dict[bytes, list[PSpan]] = defaultdict(list)
    for s in cur:
        by_trace[s.trace_id].append(s)
    said: set[tuple[str, str]] = set()
    first_hop = _first_hop(app.spans, children)
    producers = {p.span_id: p for p in app.spans if p.kind == PRODUCER}

    def once(kind: str, *entities: str) -> None:
        if (kind, entities[0]) not in said:
            said.add((kind, entities[0]))
            say(kind, *entities)

    edges_cur: Counter[tuple[str, str]] = Counter()
    for spans in by_trace.values():
        per_callee: Counter[tuple[str, str]] = Counter()
        for s in spans:
            if s.kind == CLIENT:
                per_callee[(s.instance.service, _callee(s, children))] += 1
        for (caller, callee), n in per_callee.items():
            edges_cur[(caller, callee)] += n
            if n >= 5:  # "calls per trace above 5": N+1
                once("n_plus_one", caller, callee)
            if n > 10:
                once("chatty_dependency", f"{caller}->{callee}", caller, callee)
        root = min(spans, key=lambda s: s.start)
        if root.end - root.start > 200 * MS:  # a slow request: "should be parallel"
            once("sequential_calls", first_hop.get(root.trace_id, root.instance.service))
    for s in cur:
        kids = [c for c in children.get(s.span_id, []) if c.kind == CLIENT]
        if len(kids) >= 10:
            once("fan_out", s.instance.service)
        if s.error:  # "any span with error"
            once("error_propagation", s.instance.service)
            if s.kind == SERVER:
                once("retry_storm", s.instance.service)
        if s.kind == CLIENT and s.attrs.get("db.system") and s.end - s.start > 500 * MS:
            once("slow_query", s.instance.service)
        front = (by_trace[s.trace_id][0].instance.service, first_hop.get(s.trace_id))
        if s.kind == SERVER and s.end - s.start > 50 * MS and s.instance.service not in front:
            once("critical_path_hotspot", s.instance.service)
        if s.kind == CONSUMER:
            keys = [s.parent_id, *(span for _, span in s.links)]
            p = next((producers[k] for k in keys if k in producers), None)
            if p is not None and s.start - p.end > 1000 * MS:
                once("queue_lag", s.instance.service)
    graph = {e for e, n in edges_cur.items() if n}
    for a, b in graph:
        if (b, a) in graph:
            once("dependency_cycle", a, b)
    instances: dict[str, set[str]] = defaultdict(set)
    encodings: dict[str, set[str]] = defaultdict(set)
    sdks: dict[str, set[str]] = defaultdict(set)
    for s in cur:
        i = s.instance
        instances[i.service].add(i.instance_id)
        encodings[i.service].add(i.encoding)
        sdks[i.service].add(f"{i.sdk_language} {i.sdk_version}")
    for svc, ids in instances.items():
        if len(ids) == 1:
            once("single_point_of_failure", svc)
        if len(encodings[svc]) > 1:
            once("encoding_drift", svc)
        if len(sdks[svc]) > 1:
            once("sdk_drift", svc)
    edges_prev = {(s.instance.service, _callee(s, children)) for s in prev if s.kind == CLIENT}
    for a, b in set(edges_cur) - edges_prev:
        once("new_dependency", f"{a}->{b}")
    for a, b in edges_prev - set(edges_cur):
        once("vanished_dependency", f"{a}->{b}")
    for an in app.anomalies:
        once("anomaly", an["entity"]["service"])
    return out
