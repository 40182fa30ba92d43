"""The daemon as a user runs it: `python -m otel_ai serve` in a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from otel_ai.testing.daemons import ROOT, SubprocessDaemon


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    d = SubprocessDaemon(tmp_path / "d").start()
    assert httpx.get(d.api_url + "/readyz", timeout=5).status_code == 200
    code = d.terminate(timeout=60)
    log = d.log()
    assert code == 0, log
    assert "draining" in log and "otel-ai stopped" in log


def test_second_signal_forces_exit(tmp_path: Path) -> None:
    d = SubprocessDaemon(tmp_path / "d").start()
    assert d.proc is not None
    d.proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    d.proc.send_signal(signal.SIGINT)
    code = d.proc.wait(60)
    assert code in (0, 130), d.log()


def test_restart_keeps_schema_and_data_dir(tmp_path: Path) -> None:
    d = SubprocessDaemon(tmp_path / "d").start()
    d.terminate()
    d2 = SubprocessDaemon(tmp_path / "d").start()
    try:
        assert httpx.get(d2.api_url + "/readyz", timeout=5).status_code == 200
        assert "applied migration core/1" not in d2.log()
    finally:
        d2.terminate()


def test_bad_config_names_the_key_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("pipeline:\n  batch_items: 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "otel_ai", "serve", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "pipeline.batch_items" in proc.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    d = SubprocessDaemon(tmp_path / "a").start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "otel_ai", "serve", "--storage", f"chdb://{tmp_path / 'b'}",
             "--api", d.ep.api, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"],
            cwd=ROOT, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert f"cannot listen on {d.ep.api}" in proc.stderr
        assert "otel-ai stopped" in proc.stderr  # the components it had started were shut down
    finally:
        d.terminate()
