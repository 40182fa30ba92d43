"""End to end: the known scenario through the real OTLP receivers, then the topology API and CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from otel_ai.cli.main import main as cli_main
from otel_ai.testing.daemons import InProcessDaemon, daemon_config
from otel_ai.timeutil import rfc3339
from tests.analysis.topology.scenario import (
    EDGES,
    SERVICES,
    SPANS,
    VIRTUAL,
    base_time,
    otlp_json,
    otlp_request,
)

PB = {"Content-Type": "application/x-protobuf"}


def _wait_spans(d: Any, params: dict[str, str], total: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    got = -1
    while time.monotonic() < deadline:
        r = d.get("/api/v1/services", params=params)
        assert r.status_code == 200, r.text
        got = sum(s["span_count"] for s in r.json()["services"])
        if got >= total:
            return
        time.sleep(0.2)
    raise AssertionError(f"only {got} of {total} spans arrived")


@pytest.fixture(scope="module")
def quiet(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    """One daemon without scheduled jobs, shared by the read-only tests of this module."""
    cfg, ep = daemon_config(
        chdb_path, extra={"scheduler.enabled": False}, tmp=tmp_path_factory.mktemp("topo")
    )
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


@pytest.fixture
def shop(make_daemon: Any) -> tuple[Any, dict[str, str]]:
    """A daemon fed the scenario: children before parents, over gRPC, HTTP protobuf and HTTP JSON."""
    d = make_daemon(extra={"scheduler.enabled": False})
    t0 = base_time(20)
    grpc_part = [s for s in SPANS if s.service in ("accounting", "payment")]
    pb_part = [s for s in SPANS if s.service in ("checkout", "cart")]
    json_part = [s for s in SPANS if s.service == "frontend"]
    with grpc.insecure_channel(d.ep.grpc) as channel:
        TraceServiceStub(channel).Export(otlp_request(grpc_part, t0), timeout=30)
    r = httpx.post(
        d.ep.http_url + "/v1/traces", content=otlp_request(pb_part, t0).SerializeToString(), headers=PB
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        d.ep.http_url + "/v1/traces",
        content=otlp_json(json_part, t0),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    params = {"since": rfc3339(t0), "until": rfc3339(t0 + timedelta(minutes=5))}
    _wait_spans(d, params, len(SPANS))
    return d, params


def test_topology_through_receivers(shop: tuple[Any, dict[str, str]]) -> None:
    d, params = shop
    body = d.get("/api/v1/topology", params=params).json()
    assert set(body) >= {"window", "nodes", "edges"} and body["window"]["start"] == params["since"]
    edges = {(e["source"], e["target"], e["kind"], e["target_kind"]): (e["call_count"], e["error_count"])
             for e in body["edges"]}  # fmt: skip
    assert edges == EDGES
    for e in body["edges"]:
        assert {"p50_ms", "p95_ms", "p99_ms", "error_rate", "client_p50_ms", "client_p95_ms"} <= set(e)
    nodes = {n["id"]: n for n in body["nodes"]}
    assert {k: nodes[k]["kind"] for k in VIRTUAL} == VIRTUAL
    assert {
        k: (nodes[k]["span_count"], nodes[k]["request_count"], nodes[k]["error_count"]) for k in SERVICES
    } == (SERVICES)

    services = {s["name"]: s for s in d.get("/api/v1/services", params=params).json()["services"]}
    assert services["frontend"]["encodings"] == {"protobuf": 0, "json": 4}
    assert services["frontend"]["transports"] == {"http": 4}
    assert services["payment"]["encodings"] == {"protobuf": 2, "json": 0}
    assert services["payment"]["transports"] == {"grpc": 2}
    assert services["payment"]["error_rate"] == 1.0
    one = d.get("/api/v1/services/checkout", params=params).json()
    assert (one["name"], one["span_count"]) == ("checkout", 11)


def test_snapshot_job_then_at(shop: tuple[Any, dict[str, str]]) -> None:
    d, params = shop
    topo = d.daemon.ctx.topology
    stored = topo.snapshot()
    r = d.get("/api/v1/topology", params={"at": "now"})
    assert r.status_code == 200 and r.json()["snapshot_at"] is not None
    assert len(r.json()["edges"]) == len(stored.edges)
    diff = d.get("/api/v1/topology/diff", params={
        "a_since": "2020-01-01T00:00:00Z", "a_until": "2020-01-01T00:05:00Z",
        "b_since": params["since"], "b_until": params["until"]}).json()  # fmt: skip
    assert len(diff["new_edges"]) == len(EDGES) and diff["vanished_edges"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("/api/v1/topology", {"since": "yesterday-ish"}, 400, "since"),
        ("/api/v1/topology", {"since": "1h", "until": "2h"}, 400, "until"),
        ("/api/v1/topology", {"since": "2000-01-01T00:00:00Z"}, 400, "window longer"),
        ("/api/v1/topology", {"at": "not-a-time"}, 400, "at"),
        ("/api/v1/topology", {"at": "now", "since": "1h"}, 400, "either at"),
        ("/api/v1/topology", {"at": "2001-01-01T00:00:00Z"}, 404, "no topology snapshot"),
        ("/api/v1/topology/diff", {"a_since": "garbage"}, 400, "since"),
        ("/api/v1/services", {"until": "tomorrow"}, 400, "until"),
        ("/api/v1/services/no-such-service", {}, 404, "no-such-service"),
    ],
    ids=["bad-since", "until-before-since", "absurd-window", "bad-at", "at-and-since", "no-snapshot",
         "bad-diff", "bad-until", "unknown-service"],
)  # fmt: skip
def test_bad_parameters(
    make_daemon: Any, path: str, params: dict[str, str], status: int, needle: str
) -> None:
    d = make_daemon(extra={"scheduler.enabled": False})
    r = d.get(path, params=params)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_openapi_describes_every_endpoint(quiet: InProcessDaemon) -> None:
    spec = quiet.get("/openapi.json").json()
    for path in ("/api/v1/topology", "/api/v1/topology/diff", "/api/v1/services", "/api/v1/services/{name}"):
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, path
    assert {"Topology", "Node", "Edge", "Service", "TopologyDiff"} <= set(spec["components"]["schemas"])


def test_cli_tables_and_json(shop: tuple[Any, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    d, params = shop
    base = ["--api-url", d.api_url, "--since", params["since"], "--until", params["until"]]
    assert cli_main(["topology", *base]) == 0
    out = capsys.readouterr().out
    assert "checkout -> payment" in out and "postgresql/orders" in out and "EDGES" in out
    assert cli_main(["services", *base, "--operations"]) == 0
    out = capsys.readouterr().out
    assert "frontend" in out and "json=4" in out and "payment.Charge" in out
    assert cli_main(["topology", *base, "--json"]) == 0
    assert '"call_count"' in capsys.readouterr().out
    assert cli_main(["topology", "--api-url", d.api_url, "--since", "nonsense"]) == 1
    assert "since" in capsys.readouterr().err


def test_scheduled_jobs_roll_up_and_snapshot(make_daemon: Any) -> None:
    """The real scheduler runs the rollup and snapshot jobs; answers stay exact from the rollup."""
    d = make_daemon(
        extra={
            "topology.snapshot_interval_s": 5,
            "topology.rollup_interval_s": 5,
            "topology.rollup_settle_s": 0,
        }
    )
    t0 = base_time(20)
    r = httpx.post(
        d.ep.http_url + "/v1/traces", content=otlp_request(SPANS, t0).SerializeToString(), headers=PB
    )
    assert r.status_code == 200, r.text
    params = {"since": rfc3339(t0), "until": rfc3339(t0 + timedelta(minutes=5))}
    _wait_spans(d, params, len(SPANS))
    storage = d.daemon.ctx.storage
    deadline = time.monotonic() + 60
    rolled = snap = 0
    while time.monotonic() < deadline and not (rolled and snap):
        rolled = storage.query(
            "SELECT count() FROM {db:Identifier}.otel_ai_topology_rollup WHERE minute = {m:DateTime}",
            {"db": storage.database, "m": t0.replace(tzinfo=None)},
        )[0][0]
        snap = storage.query(
            "SELECT count() FROM {db:Identifier}.otel_ai_topology", {"db": storage.database}
        )[0][0]
        time.sleep(0.5)
    assert rolled and snap, (rolled, snap)
    body = d.get("/api/v1/topology", params=params).json()
    got = {(e["source"], e["target"], e["kind"], e["target_kind"]): (e["call_count"], e["error_count"])
           for e in body["edges"]}  # fmt: skip
    assert got == EDGES
    assert d.get("/api/v1/topology", params={"at": "now"}).json()["snapshot_at"] is not None
    jobs = {j["id"] for j in d.get("/api/v1/status").json()["scheduler"]["jobs"]}
    assert {"topology.snapshot", "topology.rollup"} <= jobs
