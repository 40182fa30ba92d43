"""Shared test helpers: free ports, an in-process daemon runner and a subprocess daemon runner.

chDB opens one path per process (one chDB path per process), so in-process tests share the session's
path and isolate themselves with a database each; tests that need their own files (restart,
kill -9) run the daemon as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from otel_ai.config import Config, load_config
from otel_ai.daemon import Daemon

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_db(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def wait_http(url: str, timeout: float = 30.0, *, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == status:
                return
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready: {last}")


@dataclass
class Endpoints:
    grpc: str
    http: str
    api: str

    @property
    def api_url(self) -> str:
        return f"http://{self.api}"

    @property
    def http_url(self) -> str:
        return f"http://{self.http}"


def endpoints() -> Endpoints:
    return Endpoints(f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")


@dataclass
class InProcessDaemon:
    """A real :class:`Daemon` on loopback ports, run on its own event loop in a thread."""

    config: Config
    ep: Endpoints
    daemon: Daemon = field(init=False)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _error: BaseException | None = None

    def start(self, timeout: float = 60.0) -> InProcessDaemon:
        self.daemon = Daemon(self.config)
        started = threading.Event()

        def runner() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._main(started))
            except BaseException as exc:  # surfaced in start()/stop()
                self._error = exc
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=runner, name="daemon", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("daemon did not start")
        if self._error is not None:
            raise self._error
        return self

    async def _main(self, started: threading.Event) -> None:
        try:
            await self.daemon.start()
            started.set()
            await self.daemon._stop.wait()
        finally:
            await self.daemon.shutdown()

    def stop(self, timeout: float = 60.0) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.daemon.request_stop)
            self._thread.join(timeout)

    @property
    def api_url(self) -> str:
        return self.ep.api_url

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.api_url + path, timeout=30, **kw)

    def wait_inserted(self, timeout: float = 30.0) -> None:
        """Wait until everything acknowledged so far is inserted: with ``pipeline.ack: spool``
        (the default) an export is acknowledged once the write-ahead log has it, before the
        insert; with ``ack: insert`` this returns at once."""
        deadline = time.monotonic() + timeout
        pipeline = self.daemon.pipeline
        assert pipeline is not None, "this daemon has no ingest pipeline (role)"
        while True:
            st = pipeline.status()
            if not (st["wal"] or {}).get("pending_items") and not st["queue"]["items"]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not inserted after {timeout} s: wal {st['wal']}, queue {st['queue']}")
            time.sleep(0.02)


def daemon_config(
    chdb_path: Path,
    *,
    database: str | None = None,
    ep: Endpoints | None = None,
    extra: Mapping[str, Any] | None = None,
    tmp: Path | None = None,
) -> tuple[Config, Endpoints]:
    ep = ep or endpoints()
    tmp = tmp or chdb_path.parent
    overrides: dict[str, Any] = {
        "storage.dsn": f"chdb://{chdb_path}",
        "storage.database": database or unique_db(),
        "server.otlp_grpc": ep.grpc,
        "server.otlp_http": ep.http,
        "server.api": ep.api,
        "pipeline.spool_dir": str(tmp / f"spool-{uuid.uuid4().hex[:8]}"),
    }
    overrides.update(extra or {})
    return load_config(None, environ={}, overrides=overrides), ep


@dataclass
class SubprocessDaemon:
    """``python -m otel_ai serve`` in a child process with its own data directory."""

    data_dir: Path
    ep: Endpoints = field(default_factory=endpoints)
    extra_env: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, timeout: float = 90.0) -> SubprocessDaemon:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_AI_")}
        env.update(
            {
                "OTEL_AI_STORAGE": f"chdb://{self.data_dir / 'clickhouse'}",
                "OTEL_AI_OTLP_GRPC": self.ep.grpc,
                "OTEL_AI_OTLP_HTTP": self.ep.http,
                "OTEL_AI_API": self.ep.api,
                "OTEL_AI_PIPELINE__SPOOL_DIR": str(self.data_dir / "spool"),
            }
        )
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "otel_ai", "serve"]
        if self.config_file:
            cmd += ["--config", str(self.config_file)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"daemon-{int(time.time() * 1000)}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{self.ep.api_url}/readyz", timeout)
        except TimeoutError:
            self.kill()
            raise TimeoutError(f"daemon did not become ready; log:\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def api_url(self) -> str:
        return self.ep.api_url
