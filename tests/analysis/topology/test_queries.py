"""Topology SQL on chDB with rows inserted directly: exact nodes, edges, counts, rollup and snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.analysis.topology.model import Topology
from otel_ai.analysis.topology.service import TopologyService
from otel_ai.storage import Storage
from tests.analysis.topology.scenario import COLUMNS, EDGES, SERVICES, SPANS, VIRTUAL, S, base_time, rows

WINDOW = timedelta(minutes=5)


@pytest.fixture
def topo(storage: Storage) -> Iterator[TopologyService]:
    svc = TopologyService(storage, TopologyConfig(top_operations=2), CollectorRegistry())
    svc.start()
    yield svc
    svc.shutdown()


def insert(storage: Storage, data: list[list[Any]]) -> None:
    storage.insert("otel_traces", data, COLUMNS)


def edge_map(t: Topology) -> dict[tuple[str, str, str, str], tuple[int, int]]:
    return {(e.source, e.target, e.kind, e.target_kind): (e.call_count, e.error_count) for e in t.edges}


def by_id(t: Topology) -> dict[str, Any]:
    return {n.id: n for n in t.nodes}


def _batches(how: str) -> list[list[S]]:
    if how == "one-batch":
        return [SPANS]
    if how == "children-first":  # parents arrive in a later batch (and are older)
        parents = [s for s in SPANS if s.service == "frontend" or not s.parent]
        return [[s for s in SPANS if s not in parents], parents]
    return [[s] for s in reversed(SPANS)]  # every span alone, newest first


@pytest.mark.parametrize("how", ["one-batch", "children-first", "span-by-span-reversed"])
def test_scenario_exact_nodes_and_edges(storage: Storage, topo: TopologyService, how: str) -> None:
    t0 = base_time(30)
    for batch in _batches(how):
        insert(storage, rows(batch, t0))
    t = topo.topology(t0, t0 + WINDOW)

    assert edge_map(t) == EDGES
    assert all(e.source != e.target for e in t.edges)  # spans within one service: no self-edge
    nodes = by_id(t)
    assert set(nodes) == set(SERVICES) | set(VIRTUAL)
    for name, (spans, requests, errors) in SERVICES.items():
        n = nodes[name]
        assert (n.kind, n.instrumented, n.span_count, n.request_count, n.error_count) == (
            "service", True, spans, requests, errors,
        )  # fmt: skip
        assert n.request_rate == pytest.approx(requests / 300)
    for vid, kind in VIRTUAL.items():
        assert (nodes[vid].kind, nodes[vid].instrumented, nodes[vid].request_count) == (kind, False, 1)
    assert nodes["api.stripe.com"].error_count == 1 and nodes["api.stripe.com"].p50_ms == pytest.approx(20)

    edges = {(e.source, e.target): e for e in t.edges}
    mq = edges["checkout", "accounting"]
    assert (mq.via_links, mq.destination, mq.client_count) == (1, "kafka/orders", 2)
    pay = edges["checkout", "payment"]
    assert (pay.p50_ms, pay.client_p50_ms, pay.error_rate) == (pytest.approx(25), pytest.approx(30), 1.0)
    # A root SERVER span parenting another service counts; it has no client side.
    cart = edges["frontend", "cart"]
    assert (cart.client_count, cart.client_p50_ms, cart.p50_ms) == (0, None, pytest.approx(30))


def test_services_red_operations_and_encodings(storage: Storage, topo: TopologyService) -> None:
    t0 = base_time(30)
    data = rows(SPANS, t0)
    for r in data:
        if r[6] == "frontend":
            r[14], r[15] = "json", "http"
        elif r[6] == "payment":
            r[15] = "grpc"
    insert(storage, data)
    got = {s.name: s for s in topo.services(t0, t0 + WINDOW).services}
    assert set(got) == set(SERVICES)
    assert got["frontend"].encodings == {"protobuf": 0, "json": 4}
    assert got["payment"].transports == {"grpc": 2}
    assert (got["payment"].error_count, got["payment"].error_rate) == (2, 1.0)
    # Latency of a service = its entry spans (server/consumer/root): checkout's 4 requests.
    assert got["checkout"].p50_ms is not None and got["checkout"].p50_ms >= 20
    ops = got["checkout"].operations
    assert [o.name for o in ops] == ["POST /order", "orders publish"]  # top 2 by count, then name
    assert (ops[0].span_count, ops[0].rate) == (2, pytest.approx(2 / 300))


def test_window_is_closed_and_parents_may_precede_it(storage: Storage, topo: TopologyService) -> None:
    t0 = base_time(60)
    insert(storage, rows(SPANS, t0))
    insert(storage, rows(SPANS, t0, salt="later", shift_ms=WINDOW.total_seconds() * 1000))
    first = topo.topology(t0, t0 + WINDOW)
    second = topo.topology(t0 + WINDOW, t0 + 2 * WINDOW)
    assert edge_map(first) == EDGES and edge_map(second) == EDGES
    # Start the window inside trace A: a2 (parent, t0+5ms) lies before it, a3 (child) inside it.
    cut = topo.topology(t0 + timedelta(milliseconds=8), t0 + WINDOW)
    assert edge_map(cut)["frontend", "checkout", "http", "service"] == (1, 0)
    assert by_id(cut)["frontend"].span_count == 2  # f1, g1: a1 and a2 started before the window
    # A window that ends before the child never counts the call (counted by the child's start).
    early = topo.topology(t0, t0 + timedelta(milliseconds=9))
    assert ("frontend", "checkout", "http", "service") not in edge_map(early)


def test_rollup_matches_live_and_tracks_late_spans(storage: Storage, topo: TopologyService) -> None:
    t0 = base_time(40)
    for m in range(5):
        insert(storage, rows(SPANS, t0, salt=f"m{m}", shift_ms=m * 60_000))
    live = TopologyService(storage, TopologyConfig(rollup_enabled=False), CollectorRegistry())
    end = t0 + timedelta(minutes=5)
    expected = {k: (c * 5, e * 5) for k, (c, e) in EDGES.items()}

    assert topo.rollup(now=t0 + timedelta(minutes=30)) == 5
    assert topo.rollup(now=t0 + timedelta(minutes=30)) == 0  # nothing changed, nothing recomputed
    assert edge_map(topo.topology(t0, end)) == expected == edge_map(live.topology(t0, end))

    # Late spans for minute 2 (backfill/replay): that minute and its neighbours are live again
    # at once, so nothing is frozen; the next rollup recomputes exactly those.
    insert(storage, rows(SPANS, t0, salt="late", shift_ms=2 * 60_000 + 1000))
    expected = {k: (c * 6, e * 6) for k, (c, e) in EDGES.items()}
    assert edge_map(topo.topology(t0, end)) == expected
    assert topo.rollup(now=t0 + timedelta(minutes=30)) == 3
    assert edge_map(topo.topology(t0, end)) == expected == edge_map(live.topology(t0, end))
    # A window that is not minute-aligned mixes rolled minutes with live head and tail.
    odd = (t0 + timedelta(seconds=30), end - timedelta(seconds=20))
    assert edge_map(topo.topology(*odd)) == edge_map(live.topology(*odd))
    # A long window: rolled minutes are passed as a range, not one value per minute.
    assert edge_map(topo.topology(t0 - timedelta(days=10), end)) == expected


def test_snapshot_at_and_diff(storage: Storage, topo: TopologyService) -> None:
    t0 = base_time(50)
    before = [s for s in SPANS if s.trace not in ("E", "F")]
    before = [S(**{**s.__dict__, "error": False}) if s.service == "payment" else s for s in before]
    insert(storage, rows(before, t0))
    insert(storage, rows(SPANS, t0 + WINDOW, salt="b"))

    snap = topo.snapshot(now=t0 + WINDOW)
    assert len(snap.edges) == 7 and ("checkout", "kafka/audit") not in {
        (e.source, e.target) for e in snap.edges
    }
    got = topo.snapshot_at(t0 + WINDOW + timedelta(seconds=5))
    assert got is not None and got.snapshot_at is not None and edge_map(got) == edge_map(snap)
    assert topo.snapshot_at(t0) is None

    d = topo.diff((t0, t0 + WINDOW), (t0 + WINDOW, t0 + 2 * WINDOW))
    assert d.new_nodes == ["cart", "kafka/audit", "redis"] and d.vanished_nodes == []
    assert {(e.source, e.target) for e in d.new_edges} == {
        ("checkout", "kafka/audit"), ("frontend", "cart"), ("cart", "redis"),
    }  # fmt: skip
    changed = {(c.source, c.target): c.reasons for c in d.changed_edges}
    assert set(changed) == {("checkout", "payment"), ("payment", "api.stripe.com")}
    assert "error rate 0.00% → 100.00%" in changed["checkout", "payment"]


def test_duplicate_deliveries_do_not_square_calls(storage: Storage, topo: TopologyService) -> None:
    """At-least-once: a retried export stores every span twice; a call still counts once per pair."""
    t0 = base_time(35)
    insert(storage, rows(SPANS, t0))
    insert(storage, rows(SPANS, t0))
    t = topo.topology(t0, t0 + WINDOW)
    assert edge_map(t) == EDGES
    assert topo.rollup(now=t0 + timedelta(minutes=30)) == 1
    assert edge_map(topo.topology(t0, t0 + WINDOW)) == EDGES
    # Node figures count stored spans (as Grafana would): each copy is there.
    assert by_id(t)["checkout"].span_count == 2 * SERVICES["checkout"][0]


def test_jobs_registered_with_configured_intervals(storage: Storage) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    cfg = TopologyConfig(snapshot_interval_s=45, rollup_interval_s=30, ingest_interval_s=1.5)
    sched = BackgroundScheduler(timezone="UTC")
    TopologyService(storage, cfg, CollectorRegistry()).register_jobs(sched)
    jobs = {j.id: j.trigger.interval.total_seconds() for j in sched.get_jobs()}
    assert jobs == {"topology.snapshot": 45, "topology.rollup": 30, "topology.ingest": 1.5}
    off = BackgroundScheduler(timezone="UTC")
    TopologyService(
        storage, cfg.model_copy(update={"rollup_enabled": False}), CollectorRegistry()
    ).register_jobs(off)
    assert sorted(j.id for j in off.get_jobs()) == ["topology.ingest", "topology.snapshot"]


def test_migrations_render_for_a_cluster() -> None:
    from otel_ai.analysis.topology.schema import MIGRATIONS
    from otel_ai.storage.schema import SchemaContext

    sql = "\n".join(MIGRATIONS[0].statements(SchemaContext(database="otel", cluster="c1")))
    assert "ReplicatedSummingMergeTree(" in sql and "ReplicatedAggregatingMergeTree(" in sql
    assert "ON CLUSTER `c1`" in sql and "otel_traces_local" in sql  # views fire on each shard
    assert "ENGINE = Distributed(`c1`, `otel`, `otel_ai_topology_edges_1m_local`" in sql


def test_join_memory_bound_spills_and_gives_the_same_answer(storage: Storage) -> None:
    """``join_memory_mib``: past the bound the pairing join splits to disk (grace hash) instead of
    growing; the topology is the same as the unbounded parallel hash join's."""
    from bench.topology_gen import generate
    from otel_ai.analysis.topology import queries as q
    from otel_ai.errors import StorageError

    unbounded = TopologyService(storage, TopologyConfig(join_memory_mib=0), CollectorRegistry())
    bounded = TopologyService(storage, TopologyConfig(join_memory_mib=1), CollectorRegistry())
    unbounded.start()  # the tables and insert-time views
    t0 = base_time(40)
    generate(storage, 140_000, int(t0.timestamp()) * 10**9, 240)
    window = (t0, t0 + WINDOW)
    assert unbounded.edge_settings == q.EDGE_SETTINGS
    assert bounded.edge_settings["join_algorithm"] == "grace_hash"

    # The window's children do not fit in 1 MiB: a plain hash join with the same bound gives up.
    params = unbounded._plan(*window)
    with pytest.raises(StorageError, match="max bytes"):
        storage.query(q.EDGES_SQL, params, settings={**q.EDGE_SETTINGS, "max_bytes_in_join": 2**20})

    def summary(t: Topology) -> set[tuple[Any, ...]]:
        return {
            (e.source, e.target, e.kind, e.call_count, e.error_count, e.client_count, e.via_links)
            for e in t.edges
        }

    a, b = unbounded.topology(*window), bounded.topology(*window)
    assert summary(a) == summary(b) and len(a.edges) >= 6
    assert sum(e.call_count for e in b.edges) > 50_000
    assert {n.id: n.span_count for n in a.nodes} == {n.id: n.span_count for n in b.nodes}
