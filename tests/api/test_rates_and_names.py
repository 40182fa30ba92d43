"""Rates over the time data covers, and one naming scheme across services, nodes, edges, operations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from otel_ai.demo import generate


@pytest.fixture
def fed(make_daemon: Any) -> tuple[Any, int]:
    """A daemon holding the last 30 s of demo traffic at 5 req/s (and nothing before)."""
    d = make_daemon(extra={"scheduler.enabled": False})
    end = datetime.now(UTC)
    res = generate(end - timedelta(seconds=30), end, endpoint=d.ep.http_url, protocol="http/protobuf",
                   rate=5.0, seed=11, logs=False, diurnal=False)  # fmt: skip
    assert res.exported_spans == res.spans > 0
    d.wait_inserted()  # acked once in the write-ahead log; queried once inserted
    return d, res.requests


def test_service_rates_use_the_covered_time_not_the_whole_hour(fed: tuple[Any, int]) -> None:
    d, requests = fed
    body = d.get("/api/v1/services").json()  # default window: the last hour
    win = body["window"]
    assert 25 <= win["covered_seconds"] <= 600, win  # ~30 s of data plus the time the test took
    frontend = next(s for s in body["services"] if s["name"] == "frontend")
    # The old divisor (3600 s) would give ~0.04 req/s for a 5 req/s demo.
    assert frontend["request_rate"] == pytest.approx(frontend["request_count"] / win["covered_seconds"])
    assert requests > 100


def test_one_naming_scheme_across_object_kinds(fed: tuple[Any, int]) -> None:
    d, _ = fed
    topo = d.get("/api/v1/topology").json()
    secs = topo["window"]["covered_seconds"]
    assert topo["nodes"] and topo["edges"]
    for n in topo["nodes"]:
        assert {"span_count", "request_count", "request_rate", "error_count", "error_rate"} <= n.keys()
        for op in n["operations"]:
            assert op["request_count"] == op["span_count"] and op["request_rate"] == op["rate"]
            assert op["request_rate"] == pytest.approx(op["span_count"] / secs)
    for e in topo["edges"]:
        assert e["request_count"] == e["call_count"]
        assert e["request_rate"] == pytest.approx(e["call_count"] / secs)
        assert 0.0 <= e["error_rate"] <= 1.0
        assert e["error_rate"] == pytest.approx(e["error_count"] / e["call_count"])
