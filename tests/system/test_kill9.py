"""Crash safety with a real daemon process: kill -9 under load, and SIGTERM drain under load.

Every request the daemon acknowledged (HTTP 200 / gRPC OK) must be present after a restart on
the same data directory: an ack is only sent after the insert or the fsynced spool append.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest

from otel_ai.testing.daemons import SubprocessDaemon
from otel_ai.testing.otlp_payloads import trace_request

GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS_PER_REQUEST = 20


def _load(d: SubprocessDaemon, acked: dict[str, int], stop: threading.Event, use_grpc: bool) -> None:
    """Send requests until ``stop``; record the trace ids the daemon acknowledged."""
    channel = grpc.insecure_channel(d.ep.grpc) if use_grpc else None
    export = (
        channel.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)
        if channel
        else None
    )
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            req, tid = trace_request(SPANS_PER_REQUEST, service="crash")
            try:
                if export is not None:
                    export(req.SerializeToString(), timeout=10)
                else:
                    r = client.post(
                        d.ep.http_url + "/v1/traces",
                        content=req.SerializeToString(),
                        headers={"content-type": "application/x-protobuf"},
                    )
                    if r.status_code != 200:
                        continue
            except (grpc.RpcError, httpx.HTTPError):
                continue  # not acked: the sender would retry; nothing is promised
            acked[tid] = SPANS_PER_REQUEST
    if channel is not None:
        channel.close()


def _run_load_then(d: SubprocessDaemon, stop_action: str, min_acks: int = 40) -> dict[str, int]:
    acked: dict[str, int] = {}
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(d, acked, stop, i % 2 == 0)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < min_acks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.proc is not None
    if stop_action == "kill":
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(30)
    else:
        assert d.terminate(60) == 0, d.log()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= min_acks
    return dict(acked)


def _assert_all_present(d: SubprocessDaemon, acked: dict[str, int]) -> None:
    with httpx.Client(timeout=30) as client:
        missing = [
            tid
            for tid, n in acked.items()
            if (r := client.get(f"{d.api_url}/api/v1/traces/{tid}")).status_code != 200
            or len(r.json()["spans"]) != n
        ]
    assert not missing, f"{len(missing)} of {len(acked)} acked traces missing after restart"


def _wal_drained(d: SubprocessDaemon) -> None:
    """ack: spool — wait until the restarted daemon has inserted what its write-ahead log holds."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        wal = httpx.get(f"{d.api_url}/api/v1/status", timeout=10).json()["pipeline"]["wal"]
        if wal["pending_items"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"write-ahead log not drained: {wal}")


@pytest.mark.parametrize("ack", ["insert", "spool"])
def test_kill9_under_load_then_restart_keeps_every_acked_span(tmp_path: Path, ack: str) -> None:
    env = {
        "OTEL_AI_PIPELINE__BATCH_TIMEOUT_MS": "20",
        "OTEL_AI_SCHEDULER__ENABLED": "false",
        "OTEL_AI_PIPELINE__ACK": ack,
    }
    d = SubprocessDaemon(tmp_path / "data", extra_env=env).start()
    try:
        acked = _run_load_then(d, "kill")
    finally:
        d.kill()
    again = SubprocessDaemon(tmp_path / "data", ep=d.ep, extra_env=env).start()
    try:
        if ack == "spool":
            _wal_drained(again)
        _assert_all_present(again, acked)
    finally:
        again.kill()


@pytest.mark.parametrize("ack", ["insert", "spool"])
def test_sigterm_drains_in_flight_requests(tmp_path: Path, ack: str) -> None:
    # A long batch timeout: at SIGTERM most accepted payloads are still waiting in the queue
    # (ack: insert) or in the write-ahead log (ack: spool, the default).
    env = {
        "OTEL_AI_PIPELINE__BATCH_TIMEOUT_MS": "1000",
        "OTEL_AI_SCHEDULER__ENABLED": "false",
        "OTEL_AI_PIPELINE__ACK": ack,
    }
    d = SubprocessDaemon(tmp_path / "data", extra_env=env).start()
    try:
        acked = _run_load_then(d, "term", min_acks=8)
        assert "Traceback" not in d.log()
    finally:
        d.kill()
    again = SubprocessDaemon(tmp_path / "data", ep=d.ep, extra_env=env).start()
    try:
        if ack == "spool":
            _wal_drained(again)
        _assert_all_present(again, acked)
    finally:
        again.kill()
