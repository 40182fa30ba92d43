"""``otel-ai demo`` as a newcomer runs it: plain seconds, fail-fast endpoints, a summary that adds up."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from otel_ai.cli.demo import BACKFILL_RATE, LIVE_RATE
from otel_ai.cli.progress import Reporter
from otel_ai.demo import parse_duration
from otel_ai.testing.daemons import ROOT, free_port

SUMMARY = re.compile(
    r"done: ([\d,]+) spans generated = ([\d,]+) exported \+ ([\d,]+) dropped \(export failed\)"
    r"(?: \+ ([\d,]+) unsent)?"
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("8", 8), ("2.5", 2.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604800)],
    ids=["plain-300", "plain-8", "plain-fraction", "30s", "5m", "2h", "7d"],
)
def test_duration_accepts_plain_seconds_and_units(text: str, seconds: float) -> None:
    assert parse_duration(text, "--duration") == timedelta(seconds=seconds)


def test_backfill_defaults_to_the_live_rate() -> None:
    assert BACKFILL_RATE == LIVE_RATE


class _Otlp(BaseHTTPRequestHandler):
    """An OTLP/HTTP stand-in: ``status`` 200 acknowledges (empty protobuf response)."""

    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(self.status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Broken(_Otlp):
    status = 500


@pytest.fixture(params=[_Otlp, _Broken], ids=["accepting", "failing"])
def otlp_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", request.param.status
    srv.shutdown()


def _demo(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the demo; a run that hangs (the old 198-254 s drain) fails on ``timeout``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_AI_", "OTEL_EXPORTER_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "otel_ai", "demo", *argv],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )  # fmt: skip


def test_unreachable_endpoint_fails_fast_with_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    proc = _demo("--endpoint", f"http://127.0.0.1:{port}", "--duration", "8",
                       "--ground-truth", str(tmp_path / "gt.json"))  # fmt: skip
    assert proc.returncode == 1
    assert "done:" not in proc.stdout  # it stopped before generating anything, not after --duration
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"cannot connect to http://127.0.0.1:{port}" in lines[0] and "--endpoint" in lines[0]


def test_live_run_summary_adds_up(otlp_server: tuple[str, int], tmp_path: Path) -> None:
    url, status = otlp_server
    proc = _demo("--endpoint", url, "--protocol", "http/protobuf", "--duration", "2", "--rate", "20",
                       "--no-logs", "--ground-truth", str(tmp_path / "gt.json"))  # fmt: skip
    m = SUMMARY.search(proc.stdout)
    assert m, proc.stdout + proc.stderr
    generated, exported, dropped, unsent = (int((g or "0").replace(",", "")) for g in m.groups())
    assert generated > 0 and generated == exported + dropped + unsent
    if status == 200:
        assert proc.returncode == 0 and exported == generated
    else:  # every export fails: the drain is bounded, the exit code says so
        assert proc.returncode == 1 and exported == 0
        assert len(proc.stderr.splitlines()) <= 6, proc.stderr  # throttled, not a flood


def test_backfill_uses_the_live_rate_and_reports_progress(tmp_path: Path) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Otlp)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        gt = tmp_path / "gt.json"
        proc = _demo("--endpoint", f"http://127.0.0.1:{srv.server_port}", "--protocol", "http/protobuf",
                        "--backfill", "120", "--no-logs", "--ground-truth", str(gt))  # fmt: skip
    finally:
        srv.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{LIVE_RATE:g} req/s" in proc.stdout
    assert json.loads(gt.read_text())["rate"] == LIVE_RATE


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal-bar", "plain-lines"])
def test_progress_shows_percent_and_eta(terminal: bool) -> None:
    out = io.StringIO()
    with Reporter("backfill", 100.0, stream=out, every_s=0.0, force_terminal=terminal) as bar:
        time.sleep(0.05)
        bar.update(25.0, "1,234 spans")
        time.sleep(0.05)
        bar.update(50.0, "2,468 spans")
    text = out.getvalue()
    assert "50%" in text.replace(" ", "") or "50.0%" in text
    assert "ETA" in text and "spans" in text
