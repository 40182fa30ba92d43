"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, a seeded daemon, a guard.

The browser is the system package (``/usr/bin/chromium``, installed by ``make ui-deps``), never a
Playwright download. Every page runs under a guard that aborts and records any request leaving
the loopback host and collects console errors and uncaught exceptions; a test fails on either.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from otel_ai.demo import TimelineEvent, generate
from otel_ai.testing.daemons import InProcessDaemon, daemon_config
from otel_ai.timeutil import rfc3339

CHROMIUM = Path(os.environ.get("OTEL_AI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = Path(__file__).resolve().parent / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
VIEWPORT = {"width": 1440, "height": 900}
# Demo-shaped services the seeded daemon must show (a subset of the shop).
SEEDED = ["frontend-proxy", "frontend", "checkout", "payment", "cart", "product-catalog", "currency"]


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found: `make ui-deps` installs Debian's chromium when run as root"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Guard:
    """What a page did that it must not: leave the host, log a console error, throw."""

    allowed_status: tuple[tuple[str, int], ...] = ()
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)

    def allowed(self, url: str) -> bool:
        status = self.failed.get(url)
        return status is not None and any(
            frag in url and status == code for frag, code in self.allowed_status
        )

    def check(self) -> None:
        assert not self.external, f"requests left the daemon's host: {self.external}"
        assert not self.errors, f"console errors: {self.errors}"


def open_page(browser: Any, allowed_status: tuple[tuple[str, int], ...] = ()) -> tuple[Any, Any, Guard]:
    """A fresh context + page with the guard wired in; the caller closes the context."""
    guard = Guard(allowed_status=allowed_status)
    ctx = browser.new_context(viewport=VIEWPORT)

    def route(r: Any) -> None:
        host = urlsplit(r.request.url).hostname or ""
        if r.request.url.startswith(("data:", "blob:", "about:")) or host in LOOPBACK:
            r.continue_()
        else:
            guard.external.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.on(
        "response",
        lambda resp: guard.failed.__setitem__(resp.url, resp.status) if resp.status >= 400 else None,
    )

    def console(msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if "Failed to load resource" in msg.text and guard.allowed(url):
            return
        guard.errors.append(f"{msg.text} @ {url}")

    page.on("console", console)
    page.on("pageerror", lambda exc: guard.errors.append(f"uncaught: {exc}"))
    return ctx, page, guard


# Answers a page handles as "not there (yet)": the insights and reports APIs on a build without
# them, and the stored topology snapshot the map asks for first (none before the first snapshot job).
OPTIONAL_APIS = (("/api/v1/insights", 404), ("/api/v1/reports", 404), ("/api/v1/topology?at=now", 404))


@pytest.fixture(scope="module")
def _module_page(browser: Any) -> Iterator[tuple[Any, Guard]]:
    ctx, page, guard = open_page(browser, OPTIONAL_APIS)
    yield page, guard
    ctx.close()


@pytest.fixture
def ui(_module_page: tuple[Any, Guard]) -> tuple[Any, Guard]:
    """One page per module (as a person keeps one tab open: hash navigation, modules cached),
    with a fresh guard record and no leftover route overrides per test."""
    page, guard = _module_page
    guard.external.clear()
    guard.errors.clear()
    guard.allowed_status = OPTIONAL_APIS
    page.unroute("**/api/v1/topology*")
    return page, guard


def shot(page: Any, name: str, *, full: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


def _seed_anomaly(d: InProcessDaemon, trace_ids: list[str]) -> str:
    """One open payment anomaly through the daemon's own store, with real example traces."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    a = {
        "id": "00000000feedf00d",
        "entity": {"kind": "service", "service": "payment", "operation": None, "target": None},
        "opened_at": rfc3339(now - timedelta(minutes=6)),
        "closed_at": None,
        "score": 7.5,
        "severity": "high",
        "features": [
            {"name": "payment: error rate", "feature": "service|payment|||err_rate", "value": 0.42, "baseline": 0.01, "ratio": 42.0},
            {"name": "payment: p95 latency", "feature": "service|payment|||p95", "value": 9.1, "baseline": 7.2, "ratio": 1.26},
            {"name": "checkout: error rate", "feature": "service|checkout|||err_rate", "value": 0.2, "baseline": 0.01, "ratio": 20.0},
        ],
        "root_causes": [{"service": "payment", "score": 0.91}, {"service": "checkout", "score": 0.35}],
        "evidence": {"services": ["payment", "checkout", "frontend"], "trace_ids": trace_ids[:3],
                     "peak_window": rfc3339(now - timedelta(minutes=3)), "kind": "error_burst"},
    }  # fmt: skip
    assert d.daemon.ctx.anomaly is not None
    d.daemon.ctx.anomaly.store.save_anomaly(a, "live")
    return str(a["id"])


@dataclass
class Seeded:
    daemon: InProcessDaemon
    anomaly_id: str
    error_trace: str

    @property
    def url(self) -> str:
        return self.daemon.api_url


@pytest.fixture(scope="package")
def seeded(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A real daemon with 10 minutes of demo traffic (gRPC/protobuf + a payment failure over HTTP/JSON)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cfg, ep = daemon_config(chdb_path, tmp=tmp_path_factory.mktemp("ui"), extra={"scheduler.enabled": False})
    d = InProcessDaemon(cfg, ep).start()
    end = datetime.now(UTC)
    start = end - timedelta(minutes=10)
    generate(
        start, end, endpoint=f"http://{ep.grpc}", protocol="grpc", rate=1.5, seed=3, diurnal=False, logs=False
    )
    fault = [TimelineEvent(timedelta(0), timedelta(minutes=10), "payment-failure", "severe")]
    generate(start, end, endpoint=f"http://{ep.http}", protocol="http/json", rate=0.5, seed=4, diurnal=False,
             logs=False, timeline=fault)  # fmt: skip
    errors: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not errors:
        errors = d.get(
            "/api/v1/traces", params={"since": "15m", "service": "payment", "status": "error"}
        ).json()["traces"]
        time.sleep(0.3)
    assert errors, "no failed payment traces were stored"
    aid = _seed_anomaly(d, [t["trace_id"] for t in errors])
    yield Seeded(d, aid, errors[0]["trace_id"])
    d.stop()
