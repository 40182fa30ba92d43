"""The insights API and CLI on a real daemon (rules provider, no keys): contract shapes,
generate → list → get, ask with and without evidence, precise 400/404s, human CLI output."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from otel_ai.analysis.insights import record
from otel_ai.cli.main import main
from otel_ai.timeutil import parse_instant
from tests.insights.conftest import SpansPerService, minute_ago, start_daemon, write_traces

ASK_KEYS = {"answer", "claims", "insight_ids", "abstained", "llm"}


@pytest.fixture(scope="module")
def daemon(chdb_path: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = start_daemon(chdb_path, tmp_path_factory.mktemp("insights"), [SpansPerService()])
    yield d
    d.stop()


@pytest.fixture(scope="module")
def generated(daemon: Any) -> dict[str, Any]:
    traces = write_traces(daemon.daemon.storage, minute_ago(30), 30, error_every=3)
    r = httpx.post(
        daemon.api_url + "/api/v1/insights/generate", json={"since": "35m", "until": "20m"}, timeout=120
    )
    assert r.status_code == 200, r.text
    return {"insights": r.json()["insights"], "traces": traces}


def test_generate_list_get_shapes(daemon: Any, generated: dict[str, Any]) -> None:
    out = generated["insights"]
    assert [i["entities"][0]["id"] for i in out] == ["checkout", "frontend"]
    for ins in out:
        assert set(ins) == set(record.PUBLIC_KEYS)
        assert (
            ins["severity"] in ("critical", "high", "medium", "low", "info") and 0 <= ins["confidence"] <= 1
        )
        assert ins["llm"]["provider"] == "rules" and ins["claims"]
    listed = daemon.get("/api/v1/insights", params={"since": "2h"}).json()["insights"]
    assert [i["id"] for i in listed] == [i["id"] for i in out]
    assert daemon.get(f"/api/v1/insights/{out[0]['id']}").json() == listed[0]
    assert daemon.get(f"/api/v1/insights/{out[0]['id'].upper()}").json() == listed[0]
    only = daemon.get("/api/v1/insights", params={"since": "2h", "service": "frontend"}).json()["insights"]
    assert [i["entities"][0]["id"] for i in only] == ["frontend"]
    assert daemon.get("/api/v1/insights", params={"since": "2h", "kind": "n_plus_one"}).json() == {
        "insights": []
    }
    assert daemon.get("/api/v1/insights", params={"since": "2h", "status": "resolved"}).json() == {
        "insights": []
    }
    sev = out[0]["severity"]
    by_sev = daemon.get("/api/v1/insights", params={"since": "2h", "severity": sev, "status": "all"}).json()
    assert out[0]["id"] in [i["id"] for i in by_sev["insights"]]
    assert daemon.get("/api/v1/insights", params={"since": "10m"}).json() == {"insights": []}  # outside


def test_ask_cites_the_window_evidence(daemon: Any, generated: dict[str, Any]) -> None:
    r = httpx.post(daemon.api_url + "/api/v1/insights/ask",
                   json={"question": "why is checkout failing?", "since": "35m", "until": "20m"}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    ans = r.json()
    assert set(ans) == ASK_KEYS and ans["abstained"] is False
    ids = {e["id"] for i in generated["insights"] for e in i["evidence"]}
    ids |= {"topology:checkout", "topology:frontend", "topology:postgresql"}  # the window's topology summary
    assert ans["claims"] and all(set(c["evidence_ids"]) <= ids for c in ans["claims"])
    # the entity asked about only; first its error rate (the question is about failing), then its insight
    assert [c["evidence_ids"][0].split(":")[:2] for c in ans["claims"]][:2] == [["topology", "checkout"],
                                                                                 ["spans", "checkout"]]  # fmt: skip
    checkout = next(i["id"] for i in generated["insights"] if i["entities"][0]["id"] == "checkout")
    assert ans["insight_ids"][0] == checkout
    assert ans["llm"]["provider"] == "rules" and ans["llm"]["prompt_version"] == "insight.ask@1"


def test_ask_without_evidence_abstains(daemon: Any, generated: dict[str, Any]) -> None:
    ans = httpx.post(daemon.api_url + "/api/v1/insights/ask",
                     json={"question": "why is checkout slow?", "since": "5h", "until": "4h"}, timeout=60).json()  # fmt: skip
    assert ans["abstained"] is True and ans["claims"] == [] and ans["insight_ids"] == []
    assert ans["answer"].startswith("Not enough evidence")


@pytest.mark.parametrize(
    "method, path, kw, needle",
    [
        ("GET", "/api/v1/insights", {"params": {"since": "yesterday-ish"}}, "since"),
        ("GET", "/api/v1/insights", {"params": {"since": "1h", "until": "2h"}}, "until"),
        ("GET", "/api/v1/insights", {"params": {"status": "closed"}}, "status"),
        ("GET", "/api/v1/insights", {"params": {"kind": "n_plus_two"}}, "kind"),
        ("GET", "/api/v1/insights", {"params": {"severity": "urgent"}}, "severity"),
        ("GET", "/api/v1/insights", {"params": {"service": " "}}, "service"),
        ("GET", "/api/v1/insights/not-an-id", {}, "insight_id"),
        ("POST", "/api/v1/insights/generate", {"json": {"since": "2h", "bogus": 1}}, "bogus"),
        ("POST", "/api/v1/insights/generate", {"json": {"since": "soon"}}, "since"),
        ("POST", "/api/v1/insights/ask", {"json": {}}, "question"),
        ("POST", "/api/v1/insights/ask", {"json": {"question": "   "}}, "question"),
        ("POST", "/api/v1/insights/ask", {"json": {"question": "why?", "until": "later"}}, "until"),
    ],
    ids=["since", "reversed", "status", "kind", "severity", "service", "id", "extra", "gen-since",
         "no-question", "blank-question", "ask-until"],
)  # fmt: skip
def test_bad_parameters_are_400(daemon: Any, method: str, path: str, kw: dict[str, Any], needle: str) -> None:
    r = httpx.request(method, daemon.api_url + path, timeout=30, **kw)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(needle)


def test_unknown_id_is_404(daemon: Any) -> None:
    r = daemon.get("/api/v1/insights/" + "0" * 16)
    assert r.status_code == 404 and "not found" in r.json()["error"]


def test_cli_list_show_generate_ask(
    daemon: Any, generated: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--api-url", daemon.api_url]
    assert main(["insights", *url, "--since", "2h"]) == 0
    text = capsys.readouterr().out
    top = generated["insights"][0]
    assert top["title"] in text and f"[{top['severity']}]" in text and f"id {top['id']}" in text
    assert generated["traces"][0] in text  # example trace ids a person can open
    assert "→ Review how often `checkout` is called" in text
    assert main(["insights", "show", top["id"], *url]) == 0
    text = capsys.readouterr().out
    assert "Evidence:" in text and "[spans:checkout:count]" in text and "Recommendations:" in text
    assert "narrative: rules/rules" in text
    assert main(["insights", "generate", *url, "--since", "35m", "--until", "20m", "--kind", "chatty_dependency",
                 "--json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert [i["id"] for i in data["insights"]] == [i["id"] for i in generated["insights"]]
    assert main(["ask", "why is checkout failing?", *url, "--since", "35m", "--until", "20m"]) == 0
    text = capsys.readouterr().out
    assert "[spans:checkout:" in text and "-- rules/rules" in text
    assert main(["insights", "show", "0" * 16, *url]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["insights", *url, "--kind", "bogus"]) == 1
    assert "kind" in capsys.readouterr().err


def test_insight_routes_need_the_bearer_token(storage: Any) -> None:
    from fastapi.testclient import TestClient

    from otel_ai.api import AppContext, create_app
    from otel_ai.config import load_config
    from tests.insights.conftest import make_service

    cfg = load_config(None, environ={}, overrides={"api.token": "s3cret-token"})
    app = create_app(AppContext(config=cfg, storage=storage, insights=make_service(storage)))
    client = TestClient(app)
    calls = [("GET", "/api/v1/insights", None), ("GET", "/api/v1/insights/" + "0" * 16, None),
             ("POST", "/api/v1/insights/generate", {}), ("POST", "/api/v1/insights/ask", {"question": "why?"})]  # fmt: skip
    for method, path, body in calls:
        assert client.request(method, path, json=body).status_code == 401, path
    auth = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/v1/insights", headers=auth).json() == {"insights": []}
    assert client.get("/api/v1/insights/" + "0" * 16, headers=auth).status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/insights", "/api/v1/insights/{insight_id}", "/api/v1/insights/generate",
            "/api/v1/insights/ask"} <= set(paths)  # fmt: skip


def test_generate_without_a_body_covers_the_last_hour(storage: Any) -> None:
    from fastapi.testclient import TestClient

    from otel_ai.api import AppContext, create_app
    from otel_ai.config import load_config
    from tests.insights.conftest import make_service

    write_traces(storage, minute_ago(30), 10)
    app = create_app(
        AppContext(config=load_config(None, environ={}), storage=storage, insights=make_service(storage))
    )
    r = TestClient(app).post("/api/v1/insights/generate")
    assert r.status_code == 200, r.text
    (first, *_rest) = r.json()["insights"]
    w = first["window"]
    assert (parse_instant(w["end"]) - parse_instant(w["start"])).total_seconds() == 3600
