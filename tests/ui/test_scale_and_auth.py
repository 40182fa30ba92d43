"""The map at 200 services (a synthetic topology), and the page with ``api.token`` set."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ui.conftest import OPTIONAL_APIS, Seeded, open_page, shot

N_SERVICES = 200


def synthetic_topology(n: int, seed: int = 7) -> dict[str, Any]:
    """``n`` services in 8 tiers, each calling 1-3 services of later tiers, plus 12 databases/queues."""
    rng = random.Random(seed)
    tiers = [[f"svc-{t}-{i:03d}" for i in range(n // 8)] for t in range(8)]
    virtual = [(f"postgresql/db{i}", "database") for i in range(8)] + [
        (f"kafka/topic{i}", "messaging") for i in range(4)
    ]

    def node(nid: str, kind: str, rate: float, err: float) -> dict[str, Any]:
        return {"id": nid, "name": nid, "kind": kind, "instrumented": kind == "service", "span_count": int(rate * 3600),
                "request_count": int(rate * 3600), "request_rate": rate, "error_count": int(rate * 3600 * err),
                "error_rate": err, "p50_ms": 3.0, "p95_ms": 12.0, "p99_ms": 30.0, "operations": [],
                "encodings": {"protobuf": int(rate * 3600), "json": 0}, "transports": {"grpc": int(rate * 3600)}}  # fmt: skip

    nodes, edges = [], []
    for t, tier in enumerate(tiers):
        for sid in tier:
            nodes.append(node(sid, "service", rng.uniform(0.1, 50), rng.choice([0, 0, 0, 0.02, 0.08])))
            targets = rng.sample(tiers[t + 1], k=min(3, rng.randint(1, 3))) if t + 1 < len(tiers) else []
            if rng.random() < 0.15:
                targets.append(rng.choice(virtual)[0])
            for target in targets:
                edges.append({"source": sid, "target": target, "kind": "grpc", "target_kind": "service",
                              "destination": "", "call_count": 100, "request_rate": rng.uniform(0.1, 20),
                              "error_count": 0, "error_rate": 0.0, "p50_ms": 2.0, "p95_ms": 9.0, "p99_ms": 20.0,
                              "client_count": 100, "client_p50_ms": 2.5, "client_p95_ms": 10.0,
                              "client_p99_ms": 22.0, "via_links": 0})  # fmt: skip
    nodes += [node(v, kind, 5.0, 0.0) for v, kind in virtual]
    return {
        "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"},
        "nodes": nodes,
        "edges": edges,
    }


def test_map_with_200_services_lays_out_left_to_right(browser: Any, seeded: Seeded) -> None:
    topo = synthetic_topology(N_SERVICES)
    body = json.dumps(topo)
    # the synthetic services sent no spans: their overview answers 404 and the panel says so
    ctx, page, guard = open_page(browser, (*OPTIONAL_APIS, ("/overview", 404)))
    try:
        page.route(
            "**/api/v1/topology*", lambda r: r.fulfill(status=200, content_type="application/json", body=body)
        )
        page.goto(f"{seeded.url}/#/map?since=1h")
        page.wait_for_selector("svg.map a.node")  # drawing time: bench/ui_first_paint.py
        boxes = page.eval_on_selector_all(
            "svg.map a.node",
            "els => els.map(e => { const m = /translate\\(([-\\d.]+),([-\\d.]+)\\)/.exec(e.getAttribute('transform'));"
            " return [e.dataset.id, +m[1], +m[2]]; })",
        )
        assert len(boxes) == len(topo["nodes"])
        pos = {nid: (x, y) for nid, x, y in boxes}
        assert len(set(pos.values())) == len(pos), "two nodes share a position"
        assert all(pos[e["source"]][0] < pos[e["target"]][0] for e in topo["edges"]), "an edge points left"
        render_ms = page.evaluate("window.__otelAiFirstMap")
        shot(page, "map-200-services")
        page.fill("#map-find", "svc-3-01")
        assert page.locator("svg.map a.node.match").count() == 10  # svc-3-010 … svc-3-019
        page.click('button[aria-label="Zoom in"]')
        page.click('a.node[data-id="svc-0-000"]', force=True)
        page.wait_for_selector("#panel-title:text('svc-0-000')")
        print(f"200-service map: first paint {render_ms:.0f} ms in the page")
        guard.check()
    finally:
        ctx.close()


@pytest.fixture
def token_daemon(seeded: Seeded) -> Iterator[tuple[Seeded, str]]:
    """The seeded daemon with ``api.token`` set for the duration of one test."""
    cfg = seeded.daemon.daemon.ctx.config
    before = cfg.api.token
    cfg.api.token = "ui-t0ken"
    yield seeded, "ui-t0ken"
    cfg.api.token = before


def test_token_is_asked_once_and_kept_in_the_session(browser: Any, token_daemon: tuple[Seeded, str]) -> None:
    seeded, token = token_daemon
    assert httpx.get(seeded.url + "/api/v1/traces", timeout=10).status_code == 401
    assert httpx.get(seeded.url + "/", timeout=10).status_code == 200  # the page itself is public
    ctx, page, guard = open_page(browser, (*OPTIONAL_APIS, ("/api/v1/", 401)))
    try:
        page.goto(f"{seeded.url}/#/ingest")
        page.wait_for_selector("#token-dialog[open]")
        page.fill("#token-input", "wrong")
        page.keyboard.press("Enter")
        page.wait_for_selector("#token-dialog[open] .bad-text")  # refused: asked again, saying so
        page.fill("#token-input", token)
        page.keyboard.press("Enter")
        page.wait_for_selector("#ingest-body table")
        assert page.evaluate("sessionStorage.getItem('otel-ai.token')") == token
        page.reload()
        page.wait_for_selector("#ingest-body table")
        assert page.locator("#token-dialog").count() == 0  # kept for the session: not asked again
        page.goto(f"{seeded.url}/#/traces?since=15m")
        page.wait_for_selector("#trace-table tbody tr")
        assert token not in page.content()
        guard.check()
    finally:
        ctx.close()
