"""Ask answers from the evidence relevant to the question: on a real daemon (rules provider, the
API and the CLI) and through the real manager with a loopback OpenAI-wire model. A question
about a service's latency cites that service's insight, not the most severe one of the window; a
question nothing in the window is about abstains and names the strongest lead as unrelated; a
question naming a service the window has not seen says so."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from otel_ai.analysis.insights import ask
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind, Window
from otel_ai.cli.main import main
from otel_ai.storage import Storage
from tests.insights.conftest import (
    SPAN_COLUMNS,
    SpansPerService,
    data_block,
    fake_llm,
    honest,
    make_service,
    minute_ago,
    start_daemon,
)

KINDS: dict[str, Kind] = {"frontend": "encoding_drift", "product-catalog": "n_plus_one"}


class KindPerService(SpansPerService):
    """SpansPerService whose finding for each service has that service's kind in :data:`KINDS`."""

    def __init__(self, service: str) -> None:
        super().__init__(KINDS[service])
        self.service = service

    def detect(self, ctx: DetectContext) -> list[Finding]:
        return [f for f in super().detect(ctx) if f.entities[0].id == self.service]


DETECTORS = [KindPerService("frontend"), KindPerService("product-catalog")]


def write_shop(storage: Storage, t0: datetime, n: int, *, catalog: bool = True) -> None:
    """``n`` traces: frontend ``GET /`` → product-catalog ``GET /products`` → its database call
    (``catalog=False``: the frontend alone). The frontend's 1 s spans make its insight the most
    severe."""
    rows: list[list[Any]] = []
    for i in range(n):
        tid, ts = f"c{i:031x}"[-32:], (t0 + timedelta(milliseconds=100 * i)).replace(tzinfo=None)
        rows.append([ts, tid, f"{i:08x}00000001", "", "GET /", "Server", "frontend", {}, 10**9, "Unset"])
        if catalog:
            rows += [
                [ts, tid, f"{i:08x}00000002", f"{i:08x}00000001", "GET /products", "Server", "product-catalog",
                 {}, 200_000_000, "Unset"],
                [ts, tid, f"{i:08x}00000003", f"{i:08x}00000002", "SELECT products", "Client", "product-catalog",
                 {"db.system": "postgresql", "db.statement": "SELECT * FROM products"}, 150_000_000, "Unset"],
            ]  # fmt: skip
    storage.insert("otel_traces", rows, SPAN_COLUMNS)


@pytest.fixture(scope="module")
def daemon(chdb_path: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = start_daemon(chdb_path, tmp_path_factory.mktemp("ask"), DETECTORS)
    storage = d.daemon.storage
    write_shop(storage, minute_ago(30), 30)  # window A: both insights
    write_shop(storage, minute_ago(90), 30, catalog=False)  # window B: the encoding drift alone
    found = {}
    for name, since, until in (("A", "35m", "20m"), ("B", "95m", "80m")):
        r = httpx.post(
            d.api_url + "/api/v1/insights/generate", json={"since": since, "until": until}, timeout=120
        )
        assert r.status_code == 200, r.text
        found[name] = r.json()["insights"]
    d.found = found  # type: ignore[attr-defined]
    yield d
    d.stop()


def _ask(daemon: Any, question: str, since: str, until: str) -> dict[str, Any]:
    r = httpx.post(daemon.api_url + "/api/v1/insights/ask",
                   json={"question": question, "since": since, "until": until}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_question_about_a_service_cites_its_insight_not_the_most_severe(daemon: Any) -> None:
    found = daemon.found["A"]
    assert [i["kind"] for i in found] == ["encoding_drift", "n_plus_one"]  # the drift is the most severe
    catalog = found[1]
    ans = _ask(daemon, "why is the product list slow?", "35m", "20m")
    assert ans["abstained"] is False and ans["insight_ids"] == [catalog["id"]]
    own = {e["id"] for e in catalog["evidence"]} | {"topology:product-catalog"}
    assert ans["claims"] and all(set(c["evidence_ids"]) <= own for c in ans["claims"])
    assert ans["claims"][0]["evidence_ids"] == [catalog["evidence"][0]["id"]]
    assert "frontend" not in ans["answer"] and ans["answer"].startswith(
        "From the window's evidence: product-catalog"
    )


@pytest.mark.parametrize(
    "question, window, expected",
    [
        ("why is the billing queue slow?", ("95m", "80m"),
         "Not enough evidence in this window to answer; `billing` is not seen in this window; the strongest "
         "lead, unrelated to the question, is insight {B0}."),
        ("why is payments-service failing?", ("35m", "20m"),
         "Not enough evidence in this window to answer; `payments-service` is not seen in this window; the "
         "strongest lead, unrelated to the question, is insight {A0}."),
        ("are there retry storms?", ("35m", "20m"),
         "Not enough evidence in this window to answer; the strongest lead, unrelated to the question, is "
         "insight {A0}."),
        ("why is checkout slow?", ("35m", "20m"),
         "Not enough evidence in this window to answer; `checkout` is not seen in this window; the strongest "
         "related lead (about another entity) is insight {A1}."),
    ],
    ids=["unrelated-question", "unknown-service", "no-insight-of-that-kind", "unseen-but-related-kind"],
)  # fmt: skip
def test_a_question_nothing_is_about_abstains_and_names_the_lead(
    daemon: Any, question: str, window: tuple[str, str], expected: str
) -> None:
    def lead(ins: dict[str, Any]) -> str:
        return f"{ins['id']} ({ins['severity']}): {ins['title']}"

    leads = {
        "A0": lead(daemon.found["A"][0]),
        "A1": lead(daemon.found["A"][1]),
        "B0": lead(daemon.found["B"][0]),
    }
    assert [i["kind"] for i in daemon.found["B"]] == ["encoding_drift"]
    ans = _ask(daemon, question, *window)
    assert ans["abstained"] is True and ans["claims"] == [] and ans["insight_ids"] == []
    assert ans["answer"] == expected.format(**leads)


def test_cli_ask_answers_from_the_relevant_evidence(daemon: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--api-url", daemon.api_url]
    assert main(["ask", "why is the product list slow?", *url, "--since", "35m", "--until", "20m"]) == 0
    out = capsys.readouterr().out
    assert "product-catalog" in out and daemon.found["A"][1]["evidence"][0]["id"] in out
    assert daemon.found["A"][0]["evidence"][0]["id"] not in out  # nothing of the drift


def answering(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """One honest claim per item sent, then a wrong figure and a name the cited item is not about."""
    reply = honest(data, body)
    first = data["evidence"][0]
    reply["findings"] += [
        {"statement": f"`{first['entity']}` emitted 999 spans", "evidence_ids": [first["id"]]},
        {"statement": f"`{first['entity']}` is slowed down by `frontend`", "evidence_ids": [first["id"]]},
    ]
    return reply


def test_only_the_relevant_evidence_reaches_the_model(storage: Storage, echo: Any) -> None:
    write_shop(storage, minute_ago(30), 30)
    window = Window(minute_ago(35), minute_ago(20))
    found = make_service(storage, detectors=DETECTORS).generate(window)
    catalog = next(i for i in found if i["kind"] == "n_plus_one")
    server = echo(answering)
    svc = make_service(storage, llm=fake_llm(server), detectors=DETECTORS)
    ans = svc.ask("why is the product list slow?", window)
    assert server.calls("gpt-4o-mini") == 1
    sent = [e["id"] for e in data_block(server.requests[-1]["body"])["evidence"]]
    assert sent == [e["id"] for e in catalog["evidence"]]  # nothing of the (more severe) drift
    assert ans["abstained"] is False and ans["insight_ids"] == [catalog["id"]]
    # the same validator: one honest claim per item kept, the wrong figure and the foreign name dropped
    assert [c["evidence_ids"] for c in ans["claims"]] == [[i] for i in sent]
    assert not any("999" in c["text"] or "frontend" in c["text"] for c in ans["claims"])
    assert "999" not in ans["answer"] and ans["answer"].startswith(
        "From the window's evidence: `product-catalog`"
    )
    unrelated = svc.ask("why is the billing queue slow?", window)
    assert server.calls("gpt-4o-mini") == 1  # nothing relevant: no call
    assert unrelated["abstained"] is True and "`billing` is not seen in this window" in unrelated["answer"]


def _insight(n: int, kind: str, service: str) -> dict[str, Any]:
    return {"id": f"{n:016x}", "kind": kind, "title": f"{kind} on {service} #{n}", "severity": "medium",
            "entities": [{"kind": "service", "id": service}],
            "evidence": [{"id": f"{kind}:{service}:{n}:{k}", "kind": "metric", "observed": 100.0 + n,
                          "baseline": 10.0, "unit": "ms", "description": f"figure {k} of {service} " + "x" * 200}
                         for k in range(3)]}  # fmt: skip


def test_the_context_keeps_the_token_budget_and_the_ranking() -> None:
    insights = [_insight(n, "critical_path_hotspot" if n % 2 else "encoding_drift", "web") for n in range(40)]
    ctx = ask.context("why is web slow?", insights, [], None, tokens=1000)
    sent = [it.data for it in ctx.items]
    assert 0 < sum((len(str(d)) + 3) // 4 for d in sent) <= 1100 and len(sent) < 40 * 3
    # the latency insights of web first (in severity order), the drift ones after them
    kinds = [it.insight["kind"] for it in ctx.items if it.insight]
    assert (
        kinds == sorted(kinds, key=lambda k: k != "critical_path_hotspot")
        and kinds[0] == "critical_path_hotspot"
    )
    assert ctx.items[0].insight is not None and ctx.items[0].insight["id"] == f"{1:016x}"
    general = ask.context("what should change?", insights, [], None, focus=False, tokens=1000)
    assert general.items[0].insight is not None and general.items[0].insight["id"] == f"{0:016x}"
