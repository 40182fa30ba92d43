"""Offline API docs, our error shape for 404/405, typed OpenAPI answers that match the live JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from otel_ai.api import schemas, schemas_reports
from otel_ai.testing.daemons import InProcessDaemon, daemon_config


@pytest.fixture(scope="module")
def daemon(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    cfg, ep = daemon_config(chdb_path, tmp=tmp_path_factory.mktemp("openapi"),
                            extra={"scheduler.enabled": False})  # fmt: skip
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_daemon(daemon: InProcessDaemon, page: str) -> None:
    r = daemon.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "cdn" not in r.text.lower() and "https://" not in r.text and "//fonts." not in r.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the daemon"
        got = daemon.get(asset)
        assert got.status_code == 200 and len(got.content) > 100, asset
    assert "/openapi.json" in r.text


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/no-such-page", 404, "no such path: /no-such-page"),
        ("GET", "/api/v1/nothing-here", 404, "no such path: /api/v1/nothing-here"),
        ("DELETE", "/healthz", 405, "method DELETE not allowed on /healthz"),
        ("PUT", "/api/v1/status", 405, "method PUT not allowed on /api/v1/status"),
    ],
    ids=["unknown-page", "unknown-api-path", "delete-healthz", "put-status"],
)
def test_404_and_405_use_our_error_shape(
    daemon: InProcessDaemon, method: str, path: str, status: int, message: str
) -> None:
    r = httpx.request(method, daemon.api_url + path, timeout=10)
    assert r.status_code == status
    assert r.json() == {"error": message, "type": "not_found" if status == 404 else "method_not_allowed"}
    if status == 405:
        assert "allow" in r.headers


def test_openapi_types_every_answer_and_states_our_errors(daemon: InProcessDaemon) -> None:
    spec = daemon.get("/openapi.json").json()
    untyped = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert "422" not in op["responses"], f"{method} {path} still documents FastAPI's 422"
            ok = op["responses"].get("200") or op["responses"].get("201")
            schema = (ok or {}).get("content", {}).get("application/json", {}).get("schema", {})
            if path != "/metrics" and not ("$ref" in schema or schema.get("properties") or "items" in schema):
                untyped.append(f"{method.upper()} {path}")
    assert not untyped, f"answers without a typed schema: {untyped}"
    assert "ErrorResponse" in spec["components"]["schemas"]
    status_ref = spec["paths"]["/api/v1/status"]["get"]["responses"]["200"]["content"]["application/json"]
    assert status_ref["schema"]["$ref"].endswith("/Status")


def _check(model: type[BaseModel], body: Any) -> None:
    """The live JSON fits the documented model, and every declared field is really there."""
    model.model_validate(body)
    missing = [
        f.alias or name
        for name, f in model.model_fields.items()
        if f.is_required() and (f.alias or name) not in body
    ]
    assert not missing, f"{model.__name__}: {missing}"  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "model"),
    [
        ("GET", "/healthz", None, schemas.Health),
        ("GET", "/readyz", None, schemas.Readiness),
        ("GET", "/api/v1/status", None, schemas.Status),
        ("GET", "/api/v1/anomalies", None, schemas.AnomalyList),
        ("GET", "/api/v1/llm/models", None, schemas.LLMModels),
        ("GET", "/api/v1/llm/health", None, schemas.LLMHealth),
        ("GET", "/api/v1/llm/usage", None, schemas.LLMUsageReport),
        ("GET", "/api/v1/llm/conversations", None, schemas.ConversationList),
        ("POST", "/api/v1/llm/generate", {"prompt": "Say hello", "model": "rules", "max_tokens": 8}, schemas.LLMAnswer),
        ("GET", "/api/v1/insights", None, schemas.InsightList),
        ("POST", "/api/v1/insights/generate", {"since": "10m"}, schemas.InsightList),
        ("GET", "/api/v1/reports", None, schemas_reports.ReportList),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None,
)  # fmt: skip
def test_live_answers_match_their_documented_models(
    daemon: InProcessDaemon, method: str, path: str, body: Any, model: type[BaseModel]
) -> None:
    r = httpx.request(method, daemon.api_url + path, json=body, timeout=60)
    assert r.status_code == 200, r.text
    _check(model, r.json())


def test_conversation_answers_match_their_models(daemon: InProcessDaemon) -> None:
    api = daemon.api_url + "/api/v1/llm/conversations"
    created = httpx.post(api, json={"title": "t", "model": "rules"}, timeout=30)
    assert created.status_code == 201, created.text
    _check(schemas.Conversation, created.json())
    cid = created.json()["id"]
    _check(schemas.Conversation, httpx.get(f"{api}/{cid}", timeout=30).json())
    _check(schemas.Deleted, httpx.delete(f"{api}/{cid}", timeout=30).json())
