"""Human output: the status tables and the trace waterfall, rendered from API-shaped answers."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from otel_ai.cli import status, trace

STATUS: dict[str, Any] = {
    "version": "0.1.0", "role": "all", "uptime_s": 4000.0,
    "storage": {"dsn": "chdb:///x/clickhouse", "database": "otel", "embedded": True},
    "receivers": {"ready": True, "endpoints": {"grpc": "127.0.0.1:4317", "http": "127.0.0.1:4318"},
                  "max_body_bytes": 1, "counters": {
                      "traces": {"grpc": {"protobuf": {"requests": 12, "items_received": 4110, "items_accepted": 4100,
                                                       "items_refused": 0, "items_rejected": 10,
                                                       "outcomes": {"ok": 11, "partial": 1}}},
                                 "http": {"json": {"requests": 3, "items_received": 30, "items_accepted": 30,
                                                   "items_refused": 0, "items_rejected": 0, "outcomes": {"ok": 3}}}}}},
    "pipeline": {"queue": {"items": 5, "capacity_items": 400000, "bytes": 1048576, "capacity_bytes": 134217728,
                           "batches_waiting": 1},
                 "batch": {"items": 50000}, "ack": "spool",
                 "wal": {"bytes": 2097152, "pending_items": 77, "appended_items": 100},
                 "spool": {"dir": "/x/spool", "bytes": 0, "max_bytes": 4294967296, "segments": 0,
                           "pending_records": 0, "pending_items": 0, "torn_records_skipped": 0},
                 "inserted_items": 523, "inserted_batches": 17, "storage_down": True,
                 "last_error": "connection refused", "last_error_at": "2026-12-01T10:00:00Z"},
    "memory": {"enabled": False, "resident_bytes": 600 * 1048576, "peak_resident_bytes": 700 * 1048576},
    "scheduler": {"jobs": [{"id": "topology.rollup", "next_run": "2026-12-01T10:00:30+00:00"},
                           {"id": "paused-job", "next_run": None}]},
    "llm": {"status": "ok", "deployments": [{"name": "rules", "provider": "rules", "model": "rules", "status": "ok",
                                             "breaker": {"state": "closed"}, "calls": 3, "failures": 0}]},
    "anomaly_model": {"state": "no_model", "history_s": 120},
}  # fmt: skip


def _text(renderable: Any) -> str:
    out = io.StringIO()
    status.console(out).print(renderable)
    return out.getvalue()


def test_status_tables_cover_every_section() -> None:
    text = _text(status.render(STATUS, now=datetime(2026, 12, 1, 10, 0, tzinfo=UTC)))
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("traces") and "grpc" in line)
    assert row.split("│")[2].strip() == "protobuf"
    assert "4,110" in row and "4,100" in row and "partial 1" in row
    assert any("http" in line and "json" in line and "30" in line for line in lines)
    assert "pipeline (ack: spool)" in text and "write-ahead log" in text and "77 items pending" in text
    assert "storage DOWN" in text and "connection refused" in text
    assert "600.0 MiB" in text and "700.0 MiB" in text
    assert "topology.rollup" in text and "30 s" in text and "paused" in text
    assert "rules" in text and "closed" in text
    assert "up 66 min" in text and "chdb:///x/clickhouse" in text
    # a section this CLI does not know yet is still shown
    assert "anomaly_model" in text and "no_model" in text and "history_s" in text


def test_status_without_receivers_says_nothing_received() -> None:
    data = {**STATUS, "receivers": {**STATUS["receivers"], "counters": {}}}
    assert "(nothing received yet)" in _text(status.render(data))


def _span(
    sid: str, parent: str, name: str, start_ms: float, dur_ms: float, err: bool = False
) -> dict[str, Any]:
    whole, frac = divmod(int(start_ms * 1e6), 1_000_000_000)
    ts = datetime.fromtimestamp(1_764_000_000 + whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {"span_id": sid, "parent_span_id": parent, "name": name, "service_name": name.split(".")[0],
            "kind": "Server", "start_time": f"{ts}.{frac:09d}Z", "duration_ns": int(dur_ms * 1e6),
            "status_code": "Error" if err else "Unset"}  # fmt: skip


def test_waterfall_orders_depth_first_and_places_bars() -> None:
    spans = [
        _span("c2", "a1", "cart.get", 20, 10),
        _span("a1", "", "frontend.GET", 0, 100),
        _span("b1", "a1", "ad.get", 5, 10, err=True),
        _span("d1", "c2", "redis.HGET", 22, 1),
        _span("o1", "missing", "orphan.x", 50, 50),  # parent never arrived: shown as a root
    ]
    order = [(depth, s["span_id"]) for depth, s in trace.ordered(spans)]
    assert order == [(0, "a1"), (1, "b1"), (1, "c2"), (2, "d1"), (0, "o1")]
    text = _text(trace.render({"trace_id": "ab" * 16, "spans": spans}))
    assert "5 spans, 5 services, 100.0 ms, 1 errors" in text
    root = next(line for line in text.splitlines() if "frontend.GET" in line)
    assert "█" * trace.BAR_WIDTH in root  # the root spans the whole trace
    orphan = next(line for line in text.splitlines() if "orphan.x" in line)
    assert orphan.rstrip().endswith("█" * (trace.BAR_WIDTH // 2))  # the second half of the axis
    assert "ad.get !" in text  # errors are marked


@pytest.mark.parametrize(
    ("start", "dur", "expected"),
    [(0, 10, 4), (95, 1, 1), (0, 0, 1), (50, 50, 20)],
    ids=["first-tenth", "tiny-at-end", "zero-length", "second-half"],
)
def test_bar_width(start: int, dur: int, expected: int) -> None:
    cells = trace.bar(start, dur, 0, 100, width=40)
    assert len(cells) == 40 and cells.count("█") == expected


def test_waterfall_survives_a_parent_cycle() -> None:
    spans = [_span("a", "b", "x.a", 0, 1), _span("b", "a", "x.b", 1, 1)]
    order = [(depth, s["span_id"]) for depth, s in trace.ordered(spans)]
    assert order == [(0, "a"), (1, "b")]  # every span shown once, nothing loops forever


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_spinner_for_long_calls_only_on_a_terminal(terminal: bool) -> None:
    import time

    from otel_ai.cli.progress import spinner

    out = io.StringIO()
    with spinner("POST /api/v1/anomalies/detect", stream=out, force_terminal=terminal):
        time.sleep(0.3)
    assert ("POST /api/v1/anomalies/detect" in out.getvalue()) is terminal


def test_trace_list_shows_ids_to_open() -> None:
    rows = [{"trace_id": "ab" * 16, "start_time": "2026-12-01T10:00:00Z", "duration_ms": 1234.5, "span_count": 7,
             "error_count": 2, "root_service": "frontend", "root_operation": "GET /cart",
             "services": ["frontend", "cart"]}]  # fmt: skip
    text = trace.render_list(rows)
    line = text.splitlines()[2]
    assert line.startswith("ab" * 16) and "1,234.5" in line and "frontend: GET /cart" in line
    assert "frontend, cart" in line
    assert trace.render_list([]) == "no traces in the window"
