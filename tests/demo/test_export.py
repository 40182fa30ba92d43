"""Back-pressure without loss: the batcher blocks instead of dropping, retries failed batches, and the
official exporters honour 503 + Retry-After from a real HTTP server; the CLI rejects bad input."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from otel_ai.cli.main import main
from otel_ai.demo import generate
from otel_ai.demo.export import BlockingBatcher
from tests.demo.conftest import T0


def test_batcher_blocks_producers_instead_of_dropping() -> None:
    seen: list[int] = []
    high_water = [0]
    gate = threading.Event()

    def export(batch: list[Any]) -> bool:
        gate.wait(5)
        seen.extend(batch)
        return True

    b = BlockingBatcher(export, lambda: None, max_batch=10, max_queue=20, delay_s=0.01)

    def produce() -> None:
        for i in range(200):
            b.put(i)
            high_water[0] = max(high_water[0], b.queued)

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()  # the producer waits on the full queue
    assert b.queued <= 20
    gate.set()
    t.join(10)
    assert b.flush(10)
    b.shutdown()
    assert sorted(seen) == list(range(200)) and b.dropped == 0 and high_water[0] <= 20


def test_batcher_retries_a_failed_batch_then_counts_it_dropped() -> None:
    calls: list[int] = []

    def flaky(batch: list[Any]) -> bool:
        calls.append(len(batch))
        return len(calls) >= 3  # fails twice, then succeeds

    b = BlockingBatcher(flaky, lambda: None, max_batch=5, delay_s=0.01, retry_for=30)
    for i in range(5):
        b.put(i)
    assert b.flush(30)
    assert (b.exported, b.dropped, b.failed_attempts) == (5, 0, 2)
    b.shutdown()

    never = BlockingBatcher(lambda batch: False, lambda: None, max_batch=5, delay_s=0.01, retry_for=0.2)
    for i in range(3):
        never.put(i)
    assert never.flush(10)
    assert (never.exported, never.dropped) == (0, 3)
    never.shutdown()


class _Busy(BaseHTTPRequestHandler):
    """Answers 503 + Retry-After to the first trace export, 200 afterwards."""

    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.requests.append(
                (self.path, self.headers["Content-Type"], len(body), time.monotonic())
            )
            first = self.path == "/v1/traces" and not self.server.refused
            self.server.refused = self.server.refused or first
        if first:
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", self.headers["Content-Type"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_exporters_honour_503_retry_after_and_nothing_is_lost(protocol: str) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    srv.requests, srv.refused, srv.lock = [], False, threading.Lock()  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        res = generate(T0, T0 + timedelta(seconds=20), endpoint=f"http://127.0.0.1:{srv.server_port}",
                       protocol=protocol, rate=5, seed=1, logs=False, diurnal=False)  # fmt: skip
    finally:
        srv.shutdown()
    traces = [r for r in srv.requests if r[0] == "/v1/traces"]  # type: ignore[attr-defined]
    assert len(traces) == 2 and traces[0][2] == traces[1][2]  # refused once, then the same batch again
    assert traces[0][1] == ("application/json" if protocol == "http/json" else "application/x-protobuf")
    assert res.dropped_spans == 0 and res.exported_spans == res.spans
    # Protocol behaviour, not speed: the retry must not arrive before the server's Retry-After (1 s).
    retry_gap = traces[1][3] - traces[0][3]
    assert retry_gap >= 0.9


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--timeline", "/nonexistent/t.yaml"], "timeline /nonexistent/t.yaml"),
        (
            ["--scenario", "ad-failure", "--magnitude", "huge"],
            "magnitude: expected one of low, medium, severe",
        ),
        (["--backfill", "soon"], "--backfill: expected a duration"),
        (["--duration=-5s"], "--duration: expected a duration"),
        (["--rate", "0"], "--rate: must be > 0"),
    ],
    ids=["missing-timeline", "bad-magnitude", "bad-backfill", "bad-duration", "zero-rate"],
)
def test_cli_rejects_bad_input_with_a_precise_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc = main(["demo", "--quiet", "--ground-truth", str(tmp_path / "gt.json"), *argv])
    assert rc == 2
    assert message in capsys.readouterr().err
