"""The span ingest job: every stored span counted exactly once, before and after a run, across a
restart, a crash mid-batch, and the hand-over from a store built with the insert-time views."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.analysis.topology import ingest
from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.analysis.topology.model import Topology
from otel_ai.analysis.topology.schema import MIGRATIONS
from otel_ai.analysis.topology.service import TopologyService
from otel_ai.storage import Storage
from tests.analysis.topology.scenario import COLUMNS, EDGES, SERVICES, SPANS, base_time, rows

WINDOW = timedelta(minutes=5)


def service(storage: Storage) -> TopologyService:
    svc = TopologyService(storage, TopologyConfig(top_operations=50), CollectorRegistry())
    svc.start()
    return svc


@pytest.fixture
def topo(storage: Storage) -> Iterator[TopologyService]:
    svc = service(storage)
    yield svc
    svc.shutdown()


def insert(storage: Storage, copy: str, t0: Any) -> None:
    storage.insert("otel_traces", rows(SPANS, t0, salt=copy), COLUMNS)


def table_counts(storage: Storage) -> tuple[int, int, int]:
    """Rows in the span index, spans in the per-minute RED table and in the encodings table."""
    one = {"db": storage.database}
    index = storage.query("SELECT count() FROM {db:Identifier}.otel_ai_topology_spans", one)[0][0]
    ops = storage.query("SELECT sum(spans) FROM {db:Identifier}.otel_ai_topology_ops_1m", one)[0][0]
    per_min = storage.query("SELECT sum(spans) FROM {db:Identifier}.otel_ai_topology_minute_spans", one)[0][0]
    return int(index), int(ops or 0), int(per_min or 0)


def assert_copies(topo: TopologyService, t0: Any, copies: int) -> None:
    """The topology and services of ``copies`` distinct copies of the scenario, exactly."""
    t: Topology = topo.topology(t0, t0 + WINDOW)
    assert {(e.source, e.target, e.kind, e.target_kind): (e.call_count, e.error_count) for e in t.edges} == {
        k: (calls * copies, errors * copies) for k, (calls, errors) in EDGES.items()
    }
    nodes = {n.id: n for n in t.nodes}
    for name, (spans, requests, errors) in SERVICES.items():
        assert (nodes[name].span_count, nodes[name].request_count, nodes[name].error_count) == (
            spans * copies, requests * copies, errors * copies,
        )  # fmt: skip
    got = {s.name: s for s in topo.services(t0, t0 + WINDOW).services}
    assert {n: sum(s.encodings.values()) for n, s in got.items()} == {
        n: spans * copies for n, (spans, _, _) in SERVICES.items()
    }
    assert sum(op.span_count for op in got["checkout"].operations) == SERVICES["checkout"][0] * copies


def test_rows_before_and_after_a_run_count_once(storage: Storage, topo: TopologyService) -> None:
    t0 = base_time(30)  # minute-aligned: the window's whole minutes come from the per-minute tables
    insert(storage, "a", t0)
    assert_copies(topo, t0, 1)  # nothing copied yet: read from otel_traces past the watermark
    assert topo.ingest.run() == len(SPANS)
    assert table_counts(storage) == (len(SPANS),) * 3
    assert_copies(topo, t0, 1)  # now from the index and the per-minute tables
    insert(storage, "b", t0)
    assert_copies(topo, t0, 2)  # one copy copied, one past the watermark
    assert topo.ingest.run() == len(SPANS)
    assert topo.ingest.run() == 0  # nothing new: nothing written
    assert table_counts(storage) == (2 * len(SPANS),) * 3
    assert_copies(topo, t0, 2)
    # The edge rollup over the copied minutes agrees (it reads the same index).
    assert topo.rollup(now=t0 + timedelta(minutes=30)) == 1
    assert_copies(topo, t0, 2)


def test_a_restart_resumes_from_the_stored_watermark(storage: Storage, topo: TopologyService) -> None:
    t0 = base_time(35)
    insert(storage, "a", t0)
    topo.ingest.run()
    before = topo.ingest.state()
    assert before.mode == "job" and before.watermark > 0 and before.pending == 0
    topo.shutdown()
    insert(storage, "b", t0)
    again = service(storage)  # a new process would read the same state row
    assert again.ingest.state().watermark == before.watermark
    assert again.ingest.run() == len(SPANS)
    assert again.ingest.state().watermark > before.watermark
    assert table_counts(storage) == (2 * len(SPANS),) * 3
    assert_copies(again, t0, 2)


@pytest.mark.parametrize("written", [0, 1, 3], ids=["nothing", "index-half", "index-and-ops"])
def test_a_batch_cut_short_by_a_crash_is_redone_once(
    storage: Storage, topo: TopologyService, written: int
) -> None:
    """kill -9 between the batch's first write and its commit: the next run undoes and redoes it."""
    t0 = base_time(40)
    insert(storage, "a", t0)
    topo.ingest.run()
    insert(storage, "b", t0)
    st = topo.ingest.state()
    hi, _ = topo.ingest._next_hi(st.watermark)
    ingest._write_state(storage, ingest.IngestState("job", st.watermark, hi, st.version))
    params = {"db": storage.database, "lo": st.watermark, "hi": hi}
    for sql in (*ingest._INDEX_INSERTS, *ingest._minute_inserts(ingest._BATCH))[:written]:
        storage.command(sql, params)
    # While the batch is pending, queries still count each span once (the node figures wait for
    # the batch, then compute the window from otel_traces).
    topo.ingest.settle_timeout_s = 0.1
    assert_copies(topo, t0, 2)
    restarted = service(storage)
    assert restarted.ingest.run() == 0  # the redone batch took every block there was
    assert restarted.ingest.state() == ingest.IngestState("job", hi, 0, restarted.ingest.state().version)
    assert table_counts(storage) == (2 * len(SPANS),) * 3
    assert_copies(restarted, t0, 2)


def test_a_store_built_with_the_views_is_handed_over(storage: Storage) -> None:
    """Migrations 1-2 (insert-time views) then 3: the views go, what they counted stays counted."""
    storage.apply_migrations("topology", MIGRATIONS[:2])
    t0 = base_time(45)
    insert(storage, "a", t0)  # counted by the views, at insert
    assert table_counts(storage) == (len(SPANS),) * 3
    topo = service(storage)  # applies migration 3
    views = storage.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView'",
        {"db": storage.database},
    )
    assert [r[0] for r in views] == ["otel_traces_trace_id_ts_mv"]  # the contrib schema's own view stays
    assert topo.ingest.state().watermark > 0
    insert(storage, "b", t0)
    assert table_counts(storage) == (len(SPANS),) * 3  # no view fired
    assert_copies(topo, t0, 2)
    assert topo.ingest.run() == len(SPANS)
    assert table_counts(storage) == (2 * len(SPANS),) * 3
    assert_copies(topo, t0, 2)


def test_the_job_keeps_every_attribute_the_peer_names_read() -> None:
    """The job cuts client spans' attribute maps down to ``_PEER_KEYS`` before naming peers."""
    import re

    from otel_ai.analysis.topology.queries import SPAN_INDEX_SELECT

    read = set(re.findall(r"SpanAttributes\['([^']+)'\]", SPAN_INDEX_SELECT))
    assert read and read == set(ingest._PEER_KEYS)


def test_without_per_row_block_numbers_the_views_stay(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that refuses ``enable_block_number_column`` (as a cluster would be left alone): the
    insert-time views keep filling the tables, the job does nothing, the counts stay exact."""
    from otel_ai.errors import StorageError

    command = storage.command

    def refuse_block_numbers(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "enable_block_number_column" in sql:
            raise StorageError("Unknown setting 'enable_block_number_column'")
        return command(sql, *args, **kwargs)

    monkeypatch.setattr(storage, "command", refuse_block_numbers)
    topo = service(storage)
    monkeypatch.setattr(storage, "command", command)
    assert topo.ingest.state().mode == "views"
    t0 = base_time(50)
    insert(storage, "a", t0)
    insert(storage, "b", t0)
    assert table_counts(storage) == (2 * len(SPANS),) * 3  # the views fired
    assert topo.ingest.run() == 0
    assert_copies(topo, t0, 2)
    assert topo.rollup(now=t0 + timedelta(minutes=30)) == 1
    assert_copies(topo, t0, 2)


@pytest.mark.parametrize(
    ("pressure", "age_s", "runs"),
    [(False, 0.0, True), (True, 0.0, False), (True, 60.0, True)],
    ids=["no-backlog-runs", "backlog-yields", "backlog-but-lag-bound-reached-runs"],
)
def test_the_job_yields_to_a_backlog_for_at_most_max_lag(
    storage: Storage, topo: TopologyService, pressure: bool, age_s: float, runs: bool
) -> None:
    t0 = base_time(40 + int(age_s) % 7 + int(pressure))
    topo.ingest.run()  # copy what earlier tests left, so this one counts only its own rows
    insert(storage, f"lag-{pressure}-{age_s}", t0)
    topo.ingest.max_lag_s = 30.0
    topo.yield_to_ingest(lambda: pressure)
    topo.ingest._last_run -= age_s
    deferred = topo.ingest.deferred_runs
    try:
        assert topo.ingest.run_when_due() == (len(SPANS) if runs else 0)
        assert topo.ingest.deferred_runs == deferred + (0 if runs else 1)
        assert_copies(topo, t0, 1)  # exact either way: what was not copied is read past the watermark
    finally:
        topo.yield_to_ingest(lambda: False)
    assert topo.ingest.run_when_due() == (0 if runs else len(SPANS))  # the catch-up, once


def test_a_daemon_s_ingest_job_yields_to_its_own_pipeline(make_daemon: Any) -> None:
    d = make_daemon()
    topo, pipeline = d.daemon.ctx.topology, d.daemon.pipeline
    assert topo.ingest.pressure == pipeline.backlogged
    assert topo.ingest.max_lag_s == TopologyConfig().ingest_max_lag_s == 15.0
    assert "otel_ai_topology_ingest_deferred_runs " in d.get("/metrics").text
