"""The reports API and CLI on a real in-process daemon."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_ai.analysis.anomaly import synthetic as syn
from otel_ai.api.schemas_reports import Report, ReportList
from otel_ai.cli.main import main


@pytest.fixture(scope="module")
def daemon(chdb_path: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from otel_ai.testing.daemons import InProcessDaemon, daemon_config

    cfg, ep = daemon_config(chdb_path, tmp=tmp_path_factory.mktemp("reports-api"),
                            extra={"scheduler.enabled": False, "llm.embedded.enabled": False})  # fmt: skip
    d = InProcessDaemon(cfg, ep).start()
    now = datetime.now(UTC)
    fault = syn.Fault(
        "payment", int((now - timedelta(minutes=20)).timestamp()), int(now.timestamp()), error_p=0.5
    )
    syn.write(
        d.daemon.storage, now - timedelta(hours=2), 121, syn.SynthConfig(rate_per_min=20, faults=[fault])
    )
    yield d
    d.stop()


@pytest.fixture(scope="module")
def generated(daemon: Any) -> dict[str, Any]:
    r = httpx.post(
        daemon.api_url + "/api/v1/reports/generate", json={"since": "1h", "name": "api-test"}, timeout=120
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_generate_returns_the_stored_report(daemon: Any, generated: dict[str, Any]) -> None:
    assert generated["name"] == "api-test" and generated["status"] == "incident"
    assert generated["summary"]["llm"]["provider"] == "rules"  # LLM manager of the daemon, offline
    assert generated["llm"]["available"]  # the manager's accounting table exists
    got = httpx.get(f"{daemon.api_url}/api/v1/reports/{generated['id']}", timeout=30).json()
    assert got["figures"] == generated["figures"] and got["deliveries"] == []
    Report.model_validate(got)  # the documented (OpenAPI) shape


def test_list_newest_first_with_filters(daemon: Any, generated: dict[str, Any]) -> None:
    time.sleep(1.0)  # the LLM manager records usage in the background
    second = httpx.post(
        daemon.api_url + "/api/v1/reports/generate", json={"since": "30m"}, timeout=120
    ).json()
    assert second["llm"]["calls"] >= 1  # the first report's summary call, accounted in its window
    listing = httpx.get(daemon.api_url + "/api/v1/reports", timeout=30).json()
    ReportList.model_validate(listing)
    items = listing["reports"]
    ids = [r["id"] for r in items]
    assert ids.index(second["id"]) < ids.index(generated["id"])
    item = items[ids.index(generated["id"])]
    assert set(item) >= {"id", "name", "created_at", "window", "status", "counts", "deliveries"}
    assert item["counts"] == generated["counts"]
    named = httpx.get(daemon.api_url + "/api/v1/reports", params={"name": "api-test"}, timeout=30).json()
    assert [r["id"] for r in named["reports"]] == [generated["id"]]
    old = httpx.get(daemon.api_url + "/api/v1/reports", params={"until": "3h"}, timeout=30).json()
    assert old["reports"] == []


@pytest.mark.parametrize("fmt, media, needle", [
    ("json", "application/json", '"figures"'), ("md", "text/markdown", "## Service health"),
    ("html", "text/html", "<!DOCTYPE html>"),
], ids=["json", "md", "html"])  # fmt: skip
def test_get_each_format(daemon: Any, generated: dict[str, Any], fmt: str, media: str, needle: str) -> None:
    r = httpx.get(f"{daemon.api_url}/api/v1/reports/{generated['id']}", params={"format": fmt}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith(media) and needle in r.text


@pytest.mark.parametrize("method, path, kw, status, needle", [
    ("GET", "/api/v1/reports/00000000deadbeef", {}, 404, "deadbeef"),
    ("GET", "/api/v1/reports/nothex", {}, 400, "report_id"),
    ("GET", "/api/v1/reports/00000000deadbeef", {"params": {"format": "pdf"}}, 400, "format"),
    ("GET", "/api/v1/reports", {"params": {"since": "someday"}}, 400, "since"),
    ("GET", "/api/v1/reports", {"params": {"since": "1h", "until": "2h"}}, 400, "until"),
    ("POST", "/api/v1/reports/generate", {"json": {"since": "bogus"}}, 400, "since"),
    ("POST", "/api/v1/reports/generate", {"json": {"since": "1h", "extra": 1}}, 400, "extra"),
    ("POST", "/api/v1/reports/generate", {"json": {"since": "1h", "name": ""}}, 400, "name"),
], ids=["unknown", "bad-id", "bad-format", "bad-since", "reversed", "gen-since", "gen-extra", "gen-name"])  # fmt: skip
def test_errors_name_the_parameter(daemon: Any, method: str, path: str, kw: dict[str, Any], status: int,
                                   needle: str) -> None:  # fmt: skip
    r = httpx.request(method, daemon.api_url + path, timeout=30, **kw)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_cli_report_to_file_and_list(daemon: Any, generated: dict[str, Any], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "today.html"
    assert main(["report", "--since", "24h", "--format", "html", "--output", str(out),
                 "--api-url", daemon.api_url]) == 0  # fmt: skip
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "payment" in html
    capsys.readouterr()
    assert main(["reports", "list", "--api-url", daemon.api_url]) == 0
    listing = capsys.readouterr().out
    assert generated["id"] in listing and "api-test" in listing and "STATUS" in listing
    assert main(["report", "--since", "1h", "--format", "md", "--api-url", daemon.api_url]) == 0
    assert "## Service health" in capsys.readouterr().out


def test_cli_unreachable_daemon_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reports", "list", "--api-url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the daemon" in capsys.readouterr().err


def test_daemon_runs_a_schedule_and_delivers_signed(make_daemon: Any) -> None:
    """The daemon wiring end to end: a cron schedule fires, the report is archived and delivered."""
    from otel_ai.reports.deliver import SIGNATURE_HEADER, verify
    from tests.reports.receivers import WebhookReceiver

    receiver = WebhookReceiver().start()
    try:
        d = make_daemon({"llm.embedded.enabled": False, "anomaly.enabled": False, "reports.schedules": [
            {"name": "tick", "cron": "*/3 * * * * *", "window": "5m",
             "deliver": [{"webhook": receiver.url, "secret": "k"}]}]})  # fmt: skip
        jobs = [j["id"] for j in d.get("/api/v1/status").json()["scheduler"]["jobs"]]
        assert "report-tick" in jobs
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not receiver.hits:
            time.sleep(0.2)
        assert receiver.hits, "the scheduled report was not delivered"
        hit = receiver.hits[0]
        assert verify("k", hit.headers[SIGNATURE_HEADER], hit.body)
        rid = json.loads(hit.body)["id"]
        while time.monotonic() < deadline and not d.get(f"/api/v1/reports/{rid}").json()["deliveries"]:
            time.sleep(0.2)
        (attempt,) = d.get(f"/api/v1/reports/{rid}").json()["deliveries"][:1]
        assert attempt["outcome"] == "ok" and attempt["status_code"] == 200
        assert any(
            r["id"] == rid for r in d.get("/api/v1/reports", params={"name": "tick"}).json()["reports"]
        )
    finally:
        receiver.stop()


def test_insights_fill_in_when_the_insights_room_runs(daemon: Any) -> None:
    body = {"since": "1h", "until": "now"}
    found = httpx.post(daemon.api_url + "/api/v1/insights/generate", json=body, timeout=300)
    assert found.status_code == 200, found.text
    doc = httpx.post(daemon.api_url + "/api/v1/reports/generate", json=body, timeout=120).json()
    assert doc["insights"]["available"] is True and doc["insights"]["reason"] is None
    listed = httpx.get(
        daemon.api_url + "/api/v1/insights", params={"status": "all", **body}, timeout=30
    ).json()
    assert {i["id"] for i in doc["insights"]["items"]} <= {i["id"] for i in listed["insights"]}
    print("INSIGHTS", [(i["kind"], i["severity"]) for i in doc["insights"]["items"]])
    if doc["insights"]["items"]:  # the payment burst is usually found (error propagation)
        md = httpx.get(
            f"{daemon.api_url}/api/v1/reports/{doc['id']}", params={"format": "md"}, timeout=30
        ).text
        assert doc["insights"]["items"][0]["id"] in md
