"""Overload: a full queue answers 503 + Retry-After (HTTP) / UNAVAILABLE + RetryInfo (gRPC) at once,
and the queue never holds more than ``pipeline.queue_items`` (memory stays bounded)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from otel_ai.model import Payload
from otel_ai.testing.otlp_payloads import trace_request

GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"content-type": "application/x-protobuf"}


class GatedWriter:
    """The real writer, held until ``gate`` opens (storage that has become very slow)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()

    def write(self, payloads: Sequence[Payload]) -> None:
        self.gate.wait(60)
        self.inner.write(payloads)


def test_overload_503_and_unavailable_with_retry_info(make_daemon: Any) -> None:
    d = make_daemon(
        extra={
            # The in-memory queue held by in-flight inserts (ack once inserted); the default
            # write-ahead log's bound is the next test.
            "pipeline.ack": "insert",
            "pipeline.queue_items": 100,
            "pipeline.batch_items": 50,
            "pipeline.batch_timeout_ms": 5,
            "ingest.retry_after_s": 3,
        }
    )
    gated = GatedWriter(d.daemon.pipeline.writer)
    d.daemon.pipeline.writer = gated
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, d.daemon.pipeline.status()["queue"]["items"])
            stop.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    requests = [trace_request(10) for _ in range(40)]
    with ThreadPoolExecutor(16) as pool:
        futures = [
            pool.submit(
                httpx.post,
                d.ep.http_url + "/v1/traces",
                content=r.SerializeToString(),
                headers=PB,
                timeout=60,
            )
            for r, _ in requests
        ]
        # While the writer is stuck at most 100 items (10 requests) are admitted; the rest get 503 at once.
        deadline = time.monotonic() + 30
        while sum(f.done() for f in futures) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        statuses = [f.result().status_code for f in futures if f.done()]
        done_503 = [f.result() for f in futures if f.done() and f.result().status_code == 503]
        assert len(done_503) == 30 and len(statuses) == 30  # the 10 admitted are still waiting
        assert done_503, statuses
        r503 = done_503[0]
        assert r503.headers["retry-after"] == "3"
        st = status_pb2.Status.FromString(r503.content)
        assert st.code == 14 and "queue full" in st.message
        info = error_details_pb2.RetryInfo()
        assert st.details[0].Unpack(info) and info.retry_delay.seconds == 3

        with grpc.insecure_channel(d.ep.grpc) as ch:
            export = ch.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as exc_info:
                export(trace_request(10)[0].SerializeToString(), timeout=10)
            err = exc_info.value
            assert err.code() == grpc.StatusCode.UNAVAILABLE and "queue full" in err.details()
            trailer = dict(err.trailing_metadata())["grpc-status-details-bin"]
            rich = status_pb2.Status.FromString(trailer)
            assert rich.code == 14 and rich.details[0].Unpack(info) and info.retry_delay.seconds == 3

        gated.gate.set()
        final = [f.result(timeout=60).status_code for f in futures]
    stop.set()
    watcher.join()
    ok = [i for i, s in enumerate(final) if s == 200]
    assert len(ok) == 10 and set(final) == {200, 503}
    assert peak <= 100  # never more than pipeline.queue_items in memory
    for i in ok:  # every acked request is stored
        assert len(d.get(f"/api/v1/traces/{requests[i][1]}").json()["spans"]) == 10
    for i in set(range(40)) - set(ok):
        assert d.get(f"/api/v1/traces/{requests[i][1]}").status_code == 404
    metrics = d.get("/metrics").text
    assert (
        'otel_ai_receiver_items_total{encoding="protobuf",outcome="refused",signal="traces",transport="http"}'
        in metrics
    )
    assert d.get("/api/v1/status").json()["pipeline"]["queue"]["items"] == 0


def test_default_write_ahead_log_full_answers_503_and_memory_stays_bounded(make_daemon: Any) -> None:
    """The default ack point (the fsynced write-ahead log): while storage is stuck, acks continue
    until the log reaches ``spool_max_bytes``; past it, 503 + Retry-After / UNAVAILABLE, nothing
    is held in memory, and every acked request is stored once storage moves again."""
    d = make_daemon(extra={"pipeline.spool_max_bytes": 16384, "ingest.retry_after_s": 3})
    assert d.daemon.pipeline.config.ack == "spool"
    gated = GatedWriter(d.daemon.pipeline.writer)
    d.daemon.pipeline.writer = gated
    requests = [trace_request(10) for _ in range(60)]
    statuses: list[int] = []
    for r, _ in requests:
        resp = httpx.post(d.ep.http_url + "/v1/traces", content=r.SerializeToString(), headers=PB, timeout=30)
        statuses.append(resp.status_code)
        if resp.status_code == 503:
            assert resp.headers["retry-after"] == "3"
            st = status_pb2.Status.FromString(resp.content)
            assert st.code == 14 and "spool full" in st.message
        st_pipe = d.daemon.pipeline.status()
        assert st_pipe["queue"]["items"] == 0  # acked from disk: nothing waits in memory
        assert st_pipe["wal"]["bytes"] <= 16384
    assert statuses[0] == 200 and 503 in statuses and set(statuses) == {200, 503}
    with grpc.insecure_channel(d.ep.grpc) as ch:
        export = ch.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as exc_info:
            export(trace_request(10)[0].SerializeToString(), timeout=10)
        assert exc_info.value.code() == grpc.StatusCode.UNAVAILABLE
    gated.gate.set()
    deadline = time.monotonic() + 60
    while d.daemon.pipeline.status()["wal"]["pending_items"] and time.monotonic() < deadline:
        time.sleep(0.05)
    for (_, tid), status in zip(requests, statuses, strict=True):
        got = d.get(f"/api/v1/traces/{tid}")
        if status == 200:  # every acked request is stored
            assert len(got.json()["spans"]) == 10, tid
        else:  # and no refused one
            assert got.status_code == 404, tid
