"""``GET /api/v1/traces`` and ``GET /api/v1/services/{name}/overview`` on a real daemon.

Traces are built with the OpenTelemetry SDK (explicit timestamps, statuses and parents) and sent
through the official OTLP exporters — gRPC/protobuf for some services, HTTP/JSON for one — so
each expectation below follows from data whose shape the test knows exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from otel_ai.demo import export
from otel_ai.testing.daemons import InProcessDaemon, daemon_config

S = 1_000_000_000
MS = 1_000_000


@dataclass(frozen=True)
class Planned:
    """One trace: root service, child service, root duration (ms), child status, minutes ago."""

    name: str
    root: str
    child: str
    dur_ms: int
    child_status: StatusCode
    ago_min: float


PLAN = [
    Planned("fast-ok", "gateway", "orders", 20, StatusCode.OK, 2),
    Planned("slow-ok", "gateway", "orders", 900, StatusCode.OK, 4),
    Planned("failed", "gateway", "payments", 120, StatusCode.ERROR, 6),
    Planned("unset", "gateway", "orders", 50, StatusCode.UNSET, 8),
    Planned("old", "gateway", "orders", 30, StatusCode.OK, 40),  # outside a 30m window
    Planned("batch", "cron", "payments", 300, StatusCode.UNSET, 3),
]


def _provider(service: str, exporter: Any) -> TracerProvider:
    tp = TracerProvider(
        resource=Resource.create(
            {"service.name": service, "service.version": "1.2.3", "service.instance.id": f"{service}-1"}
        )
    )
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def _emit(ep: Any) -> dict[str, str]:
    """Send PLAN; ``payments`` goes over HTTP/JSON, the rest over gRPC. Returns name → trace id."""
    grpc = export.span_exporter("grpc", f"http://{ep.grpc}")
    json_http = export.span_exporter("http/json", f"http://{ep.http}")
    providers = {
        s: _provider(s, json_http if s == "payments" else grpc)
        for s in ("gateway", "orders", "payments", "cron")
    }
    now = time.time_ns()
    ids: dict[str, str] = {}
    for p in PLAN:
        t0 = now - int(p.ago_min * 60 * S)
        root = (
            providers[p.root]
            .get_tracer("t")
            .start_span(f"{p.name} root", kind=SpanKind.SERVER, start_time=t0)
        )
        ctx = set_span_in_context(root)
        child = (
            providers[p.child]
            .get_tracer("t")
            .start_span(f"{p.child} work", context=ctx, kind=SpanKind.SERVER, start_time=t0 + 5 * MS)
        )
        if p.child_status != StatusCode.UNSET:
            child.set_status(Status(p.child_status))
        child.end(end_time=t0 + 5 * MS + (p.dur_ms // 2) * MS)
        root.end(end_time=t0 + p.dur_ms * MS)
        ids[p.name] = format(root.get_span_context().trace_id, "032x")
    for tp in providers.values():
        tp.force_flush()
    grpc.shutdown()
    json_http.shutdown()
    return ids


@pytest.fixture(scope="module")
def seeded(
    chdb_path: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InProcessDaemon, dict[str, str]]]:
    cfg, ep = daemon_config(
        chdb_path,
        tmp=tmp_path_factory.mktemp("search"),
        extra={"scheduler.enabled": False, "anomaly.enabled": False},
    )
    d = InProcessDaemon(cfg, ep).start()
    ids = _emit(ep)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = d.get("/api/v1/traces", params={"since": "1h", "limit": 100}).json()["traces"]
        if len(got) == len(PLAN):
            break
        time.sleep(0.2)
    yield d, ids
    d.stop()


def _search(d: InProcessDaemon, **params: Any) -> list[dict[str, Any]]:
    r = d.get("/api/v1/traces", params={"since": "30m", **params})
    assert r.status_code == 200, r.text
    return list(r.json()["traces"])


def test_summary_shape_and_figures(seeded: tuple[InProcessDaemon, dict[str, str]]) -> None:
    d, ids = seeded
    found = {t["trace_id"]: t for t in _search(d)}
    t = found[ids["failed"]]
    assert set(t) == {"trace_id", "root_service", "root_operation", "start_time", "duration_ms", "span_count",
                      "error_count", "services"}  # fmt: skip
    assert (t["root_service"], t["root_operation"]) == ("gateway", "failed root")
    assert t["duration_ms"] == pytest.approx(120, abs=0.01)
    assert (t["span_count"], t["error_count"]) == (2, 1)
    assert t["services"] == ["gateway", "payments"]
    assert ids["old"] not in found  # 40 minutes ago: outside the 30-minute window


def test_newest_first_and_limit(seeded: tuple[InProcessDaemon, dict[str, str]]) -> None:
    d, ids = seeded
    order = [t["trace_id"] for t in _search(d)]
    expected = [ids[p.name] for p in sorted(PLAN, key=lambda p: p.ago_min) if p.ago_min < 30]
    assert order == expected
    assert [t["trace_id"] for t in _search(d, limit=2)] == expected[:2]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "error"}, {"failed"}),
        ({"status": "ok"}, {"fast-ok", "slow-ok"}),
        ({"status": "unset"}, {"unset", "batch"}),
        ({"service": "payments"}, {"failed", "batch"}),
        ({"service": "cron"}, {"batch"}),
        ({"service": "orders", "operation": "orders work"}, {"fast-ok", "slow-ok", "unset"}),
        ({"operation": "batch root"}, {"batch"}),
        ({"min_duration_ms": "250"}, {"slow-ok", "batch"}),
        ({"service": "gateway", "min_duration_ms": "100", "status": "ok"}, {"slow-ok"}),
        ({"service": "nobody"}, set()),
    ],
    ids=["error", "ok", "unset", "service", "root-only-service", "operation", "operation-alone",
         "min-duration", "combined", "unknown-service"],
)  # fmt: skip
def test_filters(
    seeded: tuple[InProcessDaemon, dict[str, str]], params: dict[str, str], names: set[str]
) -> None:
    d, ids = seeded
    assert {t["trace_id"] for t in _search(d, **params)} == {ids[n] for n in names}


def test_window_widens_to_reach_older_traces(seeded: tuple[InProcessDaemon, dict[str, str]]) -> None:
    d, ids = seeded
    got = [t["trace_id"] for t in _search(d, since="1h", limit=100)]
    assert got[-1] == ids["old"] and len(got) == len(PLAN)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"status": "broken"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"min_duration_ms": "-1"}, "min_duration_ms"),
        ({"min_duration_ms": "fast"}, "min_duration_ms"),
        ({"min_duration_ms": "nan"}, "min_duration_ms"),
        ({"service": " "}, "service"),
        ({"operation": ""}, "operation"),
        ({"since": "yesterday"}, "since"),
        ({"since": "10m", "until": "20m"}, "until"),
    ],
    ids=["status", "limit-zero", "limit-max", "limit-text", "negative", "duration-text", "nan", "blank-service",
         "empty-operation", "since", "reversed"],
)  # fmt: skip
def test_bad_parameters_name_the_parameter(
    seeded: tuple[InProcessDaemon, dict[str, str]], params: dict[str, str], name: str
) -> None:
    d, _ = seeded
    r = d.get("/api/v1/traces", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(name)


def test_service_overview(seeded: tuple[InProcessDaemon, dict[str, str]]) -> None:
    d, _ = seeded
    r = d.get("/api/v1/services/payments/overview", params={"since": "30m", "buckets": "6"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "payments" and body["step_s"] == 300 and len(body["series"]) == 6
    assert sum(b["requests"] for b in body["series"]) == 2  # "failed" and "batch" (server spans)
    assert sum(b["errors"] for b in body["series"]) == 1
    assert body["encodings"] == {"protobuf": 0, "json": 2}  # payments exported over HTTP/JSON
    assert [i["id"] for i in body["instances"]] == ["payments-1"]
    assert body["versions"] == [{"version": "1.2.3", "spans": 2}]
    assert body["sdks"][0]["language"] == "python" and body["sdks"][0]["spans"] == 2
    gw = d.get("/api/v1/services/gateway/overview", params={"since": "30m"}).json()
    assert gw["encodings"] == {"protobuf": 4, "json": 0}


@pytest.mark.parametrize(
    ("path", "params", "status", "fragment"),
    [
        ("/api/v1/services/nobody/overview", {}, 404, "nobody"),
        ("/api/v1/services/gateway/overview", {"buckets": "0"}, 400, "buckets"),
        ("/api/v1/services/gateway/overview", {"buckets": "many"}, 400, "buckets"),
        ("/api/v1/services/gateway/overview", {"since": "soon"}, 400, "since"),
    ],
    ids=["unknown", "zero-buckets", "text-buckets", "since"],
)
def test_overview_errors(
    seeded: tuple[InProcessDaemon, dict[str, str]],
    path: str,
    params: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    d, _ = seeded
    r = d.get(path, params=params)
    assert r.status_code == status and fragment in r.json()["error"]
