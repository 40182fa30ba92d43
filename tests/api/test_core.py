"""Health, readiness, status, metrics, auth and trace-lookup parameter errors on a real daemon."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def daemon(make_daemon: Any) -> Any:
    return make_daemon()


def test_health_and_ready(daemon: Any) -> None:
    assert daemon.get("/healthz").json() == {"status": "ok"}
    r = daemon.get("/readyz")
    assert r.status_code == 200
    assert r.json()["storage"] is True


def test_status_has_no_secrets_and_reports_storage(daemon: Any) -> None:
    body = daemon.get("/api/v1/status").json()
    assert body["version"]
    assert body["storage"]["embedded"] is True
    assert body["storage"]["database"] == daemon.config.storage.database
    assert body["uptime_s"] >= 0


def test_metrics_is_prometheus_text(daemon: Any) -> None:
    r = daemon.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("trace_id", "status", "fragment", "kind"),
    [
        ("xyz", 400, "expected 32 hex characters", "invalid_parameter"),
        ("0123456789abcdef0123456789abcde", 400, "expected 32 hex characters", "invalid_parameter"),
        ("0123456789abcdef0123456789abcdeg", 400, "expected 32 hex characters", "invalid_parameter"),
        ("0123456789abcdef0123456789abcdef", 404, "not found", "not_found"),
    ],
    ids=["short-garbage", "31-chars", "non-hex", "unknown"],
)
def test_trace_lookup_errors(daemon: Any, trace_id: str, status: int, fragment: str, kind: str) -> None:
    r = daemon.get(f"/api/v1/traces/{trace_id}")
    assert r.status_code == status
    assert fragment in r.json()["error"]
    assert set(r.json()) == {"error", "type"} and r.json()["type"] == kind


def test_framework_refusals_have_the_same_body(daemon: Any) -> None:
    r = daemon.get("/api/v1/no-such-path")
    assert r.status_code == 404
    assert r.json() == {"error": "no such path: /api/v1/no-such-path", "type": "not_found"}


def test_bearer_token_guards_api_but_not_health(make_daemon: Any) -> None:
    d = make_daemon(extra={"api.token": "t0ken-value"})
    assert d.get("/healthz").status_code == 200
    r = d.get("/api/v1/status")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"error": "missing or invalid bearer token", "type": "unauthorized"}
    assert "t0ken-value" not in r.text
    assert d.get("/api/v1/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = d.get("/api/v1/status", headers={"Authorization": "Bearer t0ken-value"})
    assert ok.status_code == 200
    assert "t0ken-value" not in ok.text


def test_openapi_lists_core_paths(daemon: Any) -> None:
    spec = httpx.get(daemon.api_url + "/openapi.json", timeout=10).json()
    for path in ("/healthz", "/readyz", "/api/v1/status", "/api/v1/traces/{trace_id}"):
        assert path in spec["paths"], path
