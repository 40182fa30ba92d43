"""Storage outage → requests still acked (spooled to disk, fsynced) → storage back → replay, zero loss.

chDB cannot be stopped from outside, so the outage is injected at the writer boundary, exactly
as a real one arrives there: the real writer is wrapped and, while "down", raises the retryable
:class:`StorageError` that the storage gateway raises for a refused connection.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import grpc
import httpx

from otel_ai.errors import StorageError
from otel_ai.model import Payload
from otel_ai.testing.otlp_payloads import json_span, json_trace, trace_request

GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"content-type": "application/x-protobuf"}


class FaultSwitchWriter:
    """The real writer behind a switch; ``down`` = connection refused."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.refused_calls = 0

    def write(self, payloads: Sequence[Payload]) -> None:
        if self.down:
            self.refused_calls += 1
            raise StorageError("insert failed: [Errno 111] Connection refused", retryable=True)
        self.inner.write(payloads)


def _wait(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_outage_spool_replay_zero_loss(make_daemon: Any) -> None:
    # ack once inserted: the outage spool of the insert path (the default write-ahead log's
    # outage is test_outage_with_the_default_write_ahead_log_zero_loss below)
    d = make_daemon(
        extra={
            "pipeline.ack": "insert",
            "pipeline.batch_timeout_ms": 10,
            "pipeline.spool_replay_interval_s": 0.2,
        }
    )
    switch = FaultSwitchWriter(d.daemon.pipeline.writer)
    d.daemon.pipeline.writer = switch
    before, before_tid = trace_request(3, service="before")
    assert (
        httpx.post(
            d.ep.http_url + "/v1/traces",
            content=before.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        ).status_code
        == 200
    )

    switch.down = True
    expected: dict[str, int] = {}
    with grpc.insecure_channel(d.ep.grpc) as ch:
        export = ch.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)
        for i in range(10):
            req, tid = trace_request(5 + i, service="outage")
            if i % 3 == 0:
                assert export(req.SerializeToString(), timeout=30) == b""
            else:
                r = httpx.post(
                    d.ep.http_url + "/v1/traces",
                    content=req.SerializeToString(),
                    headers={"content-type": "application/x-protobuf"},
                )
                assert r.status_code == 200, r.content
            expected[tid] = 5 + i
    tid_json = "0af7651916cd43dd8448eb211c80319c"
    spans = [json_span(tid_json, f"b7ad6b71692033{i:02x}", f"j{i}") for i in range(4)]
    assert (
        httpx.post(
            d.ep.http_url + "/v1/traces",
            content=json_trace(spans),
            headers={"content-type": "application/json"},
        ).status_code
        == 200
    )
    expected[tid_json] = 4

    st = d.get("/api/v1/status").json()["pipeline"]
    assert switch.refused_calls >= 1
    assert st["spool"]["bytes"] > 0 and st["spool"]["pending_items"] == sum(expected.values())
    assert st["spooled_items"] == sum(expected.values()) and "Connection refused" in st["last_error"]
    assert st["storage_down"] is True
    assert "otel_ai_spool_bytes 0.0" not in d.get("/metrics").text
    assert d.get(f"/api/v1/traces/{tid_json}").status_code == 404  # not inserted yet, only spooled

    switch.down = False
    _wait(lambda: d.get("/api/v1/status").json()["pipeline"]["spool"]["pending_records"] == 0)
    for tid, n in expected.items():
        got = d.get(f"/api/v1/traces/{tid}").json()["spans"]
        assert len(got) == n, tid
    assert {s["encoding"] for s in d.get(f"/api/v1/traces/{tid_json}").json()["spans"]} == {"json"}
    assert len(d.get(f"/api/v1/traces/{before_tid}").json()["spans"]) == 3
    st = d.get("/api/v1/status").json()["pipeline"]
    assert st["replayed_items"] == sum(expected.values()) and st["spool"]["bytes"] == 0
    assert st["storage_down"] is False
    # After replay, live inserts go straight to storage again.
    req, tid = trace_request(2)
    assert (
        httpx.post(
            d.ep.http_url + "/v1/traces",
            content=req.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        ).status_code
        == 200
    )
    assert len(d.get(f"/api/v1/traces/{tid}").json()["spans"]) == 2


def test_outage_with_the_default_write_ahead_log_zero_loss(make_daemon: Any) -> None:
    """Default config (ack once the write-ahead log has it): during an outage every export is
    still acknowledged from the log, nothing is queryable, and once storage answers every
    acknowledged span is inserted, over both transports and encodings."""
    d = make_daemon(extra={"pipeline.spool_replay_interval_s": 0.2})
    assert d.daemon.pipeline.config.ack == "spool"
    switch = FaultSwitchWriter(d.daemon.pipeline.writer)
    d.daemon.pipeline.writer = switch
    before, before_tid = trace_request(3, service="before")
    r = httpx.post(d.ep.http_url + "/v1/traces", content=before.SerializeToString(), headers=PB)
    assert r.status_code == 200
    d.wait_inserted()
    switch.down = True
    expected: dict[str, int] = {}
    with grpc.insecure_channel(d.ep.grpc) as ch:
        export = ch.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)
        for i in range(6):
            req, tid = trace_request(5 + i, service="outage")
            if i % 2 == 0:
                assert export(req.SerializeToString(), timeout=30) == b""
            else:
                r = httpx.post(d.ep.http_url + "/v1/traces", content=req.SerializeToString(), headers=PB)
                assert r.status_code == 200, r.content
            expected[tid] = 5 + i
    tid_json = "1af7651916cd43dd8448eb211c80319c"
    spans = [json_span(tid_json, f"c7ad6b71692033{i:02x}", f"j{i}") for i in range(4)]
    r = httpx.post(
        d.ep.http_url + "/v1/traces", content=json_trace(spans), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200
    expected[tid_json] = 4
    _wait(lambda: switch.refused_calls >= 1 and d.get("/api/v1/status").json()["pipeline"]["storage_down"])
    st = d.get("/api/v1/status").json()["pipeline"]
    assert st["wal"]["pending_items"] == sum(expected.values()) and st["wal"]["bytes"] > 0
    assert "Connection refused" in st["last_error"]
    assert d.get(f"/api/v1/traces/{tid_json}").status_code == 404  # only in the log
    switch.down = False
    _wait(lambda: d.get("/api/v1/status").json()["pipeline"]["wal"]["pending_items"] == 0)
    for tid, n in expected.items():
        assert len(d.get(f"/api/v1/traces/{tid}").json()["spans"]) == n, tid
    assert len(d.get(f"/api/v1/traces/{before_tid}").json()["spans"]) == 3
    st = d.get("/api/v1/status").json()["pipeline"]
    assert st["storage_down"] is False and st["wal"]["bytes"] == 0 and st["failed_items"] == 0
    assert "otel_ai_pipeline_dropped_items_total{" not in d.get("/metrics").text  # nothing acked dropped


def test_outage_with_full_spool_answers_503(make_daemon: Any) -> None:
    d = make_daemon(
        extra={"pipeline.ack": "insert", "pipeline.batch_timeout_ms": 10, "pipeline.spool_max_bytes": 4096}
    )
    switch = FaultSwitchWriter(d.daemon.pipeline.writer)
    d.daemon.pipeline.writer = switch
    switch.down = True
    statuses = []
    for _ in range(20):
        req, _tid = trace_request(10)
        r = httpx.post(
            d.ep.http_url + "/v1/traces",
            content=req.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        statuses.append(r.status_code)
        if r.status_code == 503:
            assert r.headers["retry-after"] == "2" and b"spool full" in r.content
    assert statuses[0] == 200 and 503 in statuses  # accepted while the spool had room, then refused
    assert d.get("/api/v1/status").json()["pipeline"]["spool"]["bytes"] <= 4096


def test_spool_written_during_outage_is_replayed_by_the_next_daemon(make_daemon: Any, tmp_path: Any) -> None:
    spool_dir = str(tmp_path / "shared-spool")
    d = make_daemon(extra={"pipeline.batch_timeout_ms": 10, "pipeline.spool_dir": spool_dir})
    switch = FaultSwitchWriter(d.daemon.pipeline.writer)
    d.daemon.pipeline.writer = switch
    switch.down = True
    sent = {}
    for i in range(5):
        req, tid = trace_request(3 + i, service="restart")
        r = httpx.post(
            d.ep.http_url + "/v1/traces",
            content=req.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        assert r.status_code == 200
        sent[tid] = 3 + i
    database = d.config.storage.database
    d.stop()  # storage still "down": the data lives only in the spool files now

    again = make_daemon(
        extra={"pipeline.spool_dir": spool_dir, "pipeline.spool_replay_interval_s": 0.2}, database=database
    )
    # default ack point: the outage kept the records in the write-ahead log (ack: insert: the spool)
    _wait(
        lambda: (
            (p := again.get("/api/v1/status").json()["pipeline"])["spool"]["pending_records"] == 0
            and p["wal"]["pending_items"] == 0
        )
    )
    for tid, n in sent.items():
        assert len(again.get(f"/api/v1/traces/{tid}").json()["spans"]) == n
