"""Turn query rows into nodes, edges and services; compare two topologies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from otel_ai.analysis.topology.model import (
    Edge,
    EdgeChange,
    Node,
    Operation,
    Service,
    Topology,
    TopologyDiff,
)

NS_PER_MS = 1_000_000.0


def _ms(quantiles: Sequence[float] | None, count: int) -> tuple[float | None, float | None, float | None]:
    """p50/p95/p99 in ms; ``None`` when nothing was measured (never a made-up figure)."""
    if not count or not quantiles:
        return None, None, None
    return tuple(round(float(v) / NS_PER_MS, 3) for v in quantiles)  # type: ignore[return-value]


def _rate(n: int, total: int) -> float:
    return n / total if total else 0.0


def _per_s(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def build_edges(rows: list[dict[str, Any]], seconds: float) -> tuple[list[Edge], dict[str, dict[str, Any]]]:
    """Edges, plus the per-target rows (all calls into each target merged) of the second grouping set."""
    edges: list[Edge] = []
    per_target: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["kind"] == "":
            per_target[r["target"]] = r
            continue
        calls, errors, clients = int(r["call_count"]), int(r["error_count"]), int(r["client_count"])
        p50, p95, p99 = _ms(r["server_q"], calls)
        c50, c95, c99 = _ms(r["client_q"], clients)
        edges.append(
            Edge(
                source=r["source"],
                target=r["target"],
                kind=r["kind"],
                target_kind=r["target_kind"],
                destination=r["destination"],
                call_count=calls,
                request_rate=_per_s(calls, seconds),
                error_count=errors,
                error_rate=_rate(errors, calls),
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                client_count=clients,
                client_p50_ms=c50,
                client_p95_ms=c95,
                client_p99_ms=c99,
                via_links=int(r["via_links"]),
            )
        )
    return edges, per_target


def _operations(op_rows: list[dict[str, Any]], seconds: float) -> dict[str, list[Operation]]:
    out: dict[str, list[Operation]] = defaultdict(list)
    for r in op_rows:
        n, e = int(r["span_count"]), int(r["error_count"])
        p50, p95, p99 = _ms(r["q"], n)
        out[r["service"]].append(
            Operation(
                name=r["name"],
                kind=r["kind"],
                span_count=n,
                error_count=e,
                error_rate=_rate(e, n),
                rate=_per_s(n, seconds),
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
            )
        )
    return out


def _ingest(rows: list[dict[str, Any]]) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    enc: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    tr: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        enc[r["service"]][r["encoding"] or "unknown"] += int(r["n"])
        tr[r["service"]][r["transport"] or "unknown"] += int(r["n"])
    return enc, tr


def build_services(
    node_rows: list[dict[str, Any]],
    op_rows: list[dict[str, Any]],
    ingest_rows: list[dict[str, Any]],
    seconds: float,
) -> list[Service]:
    """Instrumented services with RED: latency of entry spans (server/consumer/root) when any."""
    ops = _operations(op_rows, seconds)
    enc, tr = _ingest(ingest_rows)
    out = []
    for r in node_rows:
        spans, errors, requests = int(r["span_count"]), int(r["error_count"]), int(r["request_count"])
        p50, p95, p99 = _ms(r["entry_q"], requests) if requests else _ms(r["all_q"], spans)
        name = r["name"]
        out.append(
            Service(
                name=name,
                span_count=spans,
                request_count=requests,
                request_rate=_per_s(requests, seconds),
                error_count=errors,
                error_rate=_rate(errors, spans),
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                encodings={"protobuf": 0, "json": 0, **enc.get(name, {})},
                transports=dict(tr.get(name, {})),
                operations=ops.get(name, []),
            )
        )
    return out


def build_nodes(
    node_rows: list[dict[str, Any]],
    op_rows: list[dict[str, Any]],
    ingest_rows: list[dict[str, Any]],
    edges: list[Edge],
    per_target: dict[str, dict[str, Any]],
    seconds: float,
) -> list[Node]:
    """Every service, then every virtual peer (figures from the calls it received)."""
    nodes = [
        Node(id=s.name, kind="service", instrumented=True, **s.model_dump())
        for s in build_services(node_rows, op_rows, ingest_rows, seconds)
    ]
    known = {n.id for n in nodes}
    for e in edges:
        if e.target in known:
            continue
        known.add(e.target)
        t = per_target.get(e.target, {})
        calls, errors = int(t.get("call_count", 0)), int(t.get("error_count", 0))
        p50, p95, p99 = _ms(t.get("server_q"), calls)
        nodes.append(
            Node(
                id=e.target,
                name=e.target,
                kind=e.target_kind,
                instrumented=False,
                span_count=0,
                request_count=calls,
                request_rate=_per_s(calls, seconds),
                error_count=errors,
                error_rate=_rate(errors, calls),
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
            )
        )
    return nodes


def diff_topologies(
    a: Topology, b: Topology, *, latency_ratio: float, error_rate_delta: float
) -> TopologyDiff:
    """New/vanished nodes and edges from ``a`` to ``b``; edges whose p95 or error rate moved."""
    ea = {(e.source, e.target, e.kind): e for e in a.edges}
    eb = {(e.source, e.target, e.kind): e for e in b.edges}
    changed = []
    for key in sorted(ea.keys() & eb.keys()):
        x, y = ea[key], eb[key]
        reasons = []
        if x.p95_ms and y.p95_ms:
            ratio = y.p95_ms / x.p95_ms
            if ratio >= latency_ratio or ratio <= 1 / latency_ratio:
                reasons.append(f"p95 {x.p95_ms:g} ms → {y.p95_ms:g} ms (x{ratio:.2f})")
        if abs(y.error_rate - x.error_rate) >= error_rate_delta:
            reasons.append(f"error rate {x.error_rate:.2%} → {y.error_rate:.2%}")
        if reasons:
            changed.append(EdgeChange(source=key[0], target=key[1], kind=key[2], a=x, b=y, reasons=reasons))
    na, nb = {n.id for n in a.nodes}, {n.id for n in b.nodes}
    return TopologyDiff(
        a=a.window,
        b=b.window,
        new_nodes=sorted(nb - na),
        vanished_nodes=sorted(na - nb),
        new_edges=[eb[k] for k in sorted(eb.keys() - ea.keys())],
        vanished_edges=[ea[k] for k in sorted(ea.keys() - eb.keys())],
        changed_edges=changed,
    )
