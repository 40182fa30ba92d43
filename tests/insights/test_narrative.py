"""The LLM step through the real manager and a real loopback OpenAI-wire server: grounding
(uncited claims, invented names, unknown evidence ids dropped; abstained when nothing remains),
prompt injection in telemetry, the narrative cache, redaction before an external provider and
the accounting in the manager's usage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from otel_ai.analysis.insights.grounding import validate
from otel_ai.analysis.insights.model import Window
from otel_ai.storage import Storage
from otel_ai.testing.stores import storage_at
from tests.insights.conftest import (
    INJECTION,
    EchoModel,
    fake_llm,
    honest,
    make_service,
    minute_ago,
    write_traces,
)


def _window() -> Window:
    return Window(minute_ago(31), minute_ago(20))


def liar(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Every claim breaks one rule: unknown evidence id, invented service or database, an entity
    the evidence is not about. (An uncited claim cannot pass the schema: see the next test.)"""
    first = data["evidence"][0]["id"]
    return {
        "title": "t",
        "summary": "The billing-service is failing.",
        "findings": [
            {"statement": f"`{data['subject']}` is overloaded", "evidence_ids": ["spans:made-up:count"]},
            {"statement": "billing-service causes the errors", "evidence_ids": [first]},
            {"statement": "`payments_db` is the bottleneck", "evidence_ids": [first]},
            {"statement": "The problem is in `frontend-gateway`", "evidence_ids": [first]},
        ],
        "recommendations": [{"action": "Scale billing-service", "rationale": "", "evidence_ids": [first]},
                            {"action": "Restart everything", "rationale": "", "evidence_ids": ["nope"]}],
    }  # fmt: skip


def uncited(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {"title": "t", "summary": "All good.", "recommendations": [],
            "findings": [{"statement": "Latency is fine everywhere.", "evidence_ids": []}]}  # fmt: skip


def test_uncited_claims_fail_the_schema_and_the_rules_narrative_answers(storage: Storage, echo: Any) -> None:
    write_traces(storage, minute_ago(30), 20)
    server = echo(uncited)
    out = make_service(storage, llm=fake_llm(server)).generate(_window())
    assert server.calls("gpt-4o-mini") == 4  # each narrative: the reply, one repair retry with the error
    for ins in out:
        assert ins["llm"]["provider"] == "rules"
        assert ins["claims"] and all(c["evidence_ids"] for c in ins["claims"])
        assert not any("fine everywhere" in c["text"] for c in ins["claims"])


def half_liar(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    good = honest(data, body)
    bad = liar(data, body)
    return {**good, "findings": bad["findings"] + good["findings"]}


def test_invented_claims_are_dropped_and_the_insight_abstains(storage: Storage, echo: Any) -> None:
    write_traces(storage, minute_ago(30), 20)
    server: EchoModel = echo(liar)
    svc = make_service(storage, llm=fake_llm(server))
    out = svc.generate(_window())
    assert len(out) == 2 and server.calls("gpt-4o-mini") == 2
    for ins in out:
        assert ins["llm"]["provider"] == "openai" and ins["llm"]["model"].startswith("gpt-4o-mini")
        assert ins["claims"] == [] and ins["abstained"] is True
        assert "billing" not in ins["summary"] and "strongest lead" in ins["summary"]
        assert ins["confidence"] <= 0.5
        # the invented recommendations are gone; the detector's own (grounded) one stays
        assert [r["action"] for r in ins["recommendations"]] == [
            f"Review how often `{ins['entities'][0]['id']}` is called"
        ]


def test_only_the_grounded_claims_survive(storage: Storage, echo: Any) -> None:
    write_traces(storage, minute_ago(30), 20)
    svc = make_service(storage, llm=fake_llm(echo(half_liar)))
    for ins in svc.generate(_window()):
        subject = ins["entities"][0]["id"]
        ids = [e["id"] for e in ins["evidence"]]
        assert [c["evidence_ids"] for c in ins["claims"]] == [[i] for i in ids]
        assert all(c["text"].startswith(f"`{subject}`") for c in ins["claims"])
        assert ins["abstained"] is False
        assert ins["recommendations"][0]["action"] == f"Look at `{subject}` first"  # the model's, grounded


def test_validator_rules() -> None:
    items = [
        {"text": "`checkout` makes 12 calls to `postgresql/orders`", "evidence_ids": ["e1"]},
        {"text": "checkout->payment is slow, a fan-out over 5 req/s and 120 ms", "evidence_ids": ["e1"]},
        {"text": "`SELECT * FROM orders` repeats", "evidence_ids": ["e1"]},
        {"text": "billing-service is down", "evidence_ids": ["e1"]},
        {"text": "`billing` fails", "evidence_ids": ["e1"]},
        {"text": "user_db is slow", "evidence_ids": ["e1"]},
        {"text": "it calls api.example.com", "evidence_ids": ["e1"]},
        {"text": "frontend is healthy", "evidence_ids": ["e1"]},
        {"text": "uncited", "evidence_ids": []},
        {"text": "unknown id", "evidence_ids": ["e9"]},
    ]
    v = validate(items, ["e1"], ["checkout", "postgresql/orders", "checkout->payment"], ["frontend", "payment"],
                 evidence_text="SELECT * FROM orders WHERE id = ?")  # fmt: skip
    assert [k["text"] for k in v.kept] == [i["text"] for i in items[:3]]
    reasons = [r for _, r in v.dropped]
    assert reasons == [
        "names 'billing-service', which is not in the evidence",
        "names 'billing', which is not in the evidence",
        "names 'user_db', which is not in the evidence",
        "names 'api.example.com', which is not in the evidence",
        "names 'frontend', which the evidence is not about",
        "cites no evidence",
        "cites unknown evidence 'e9'",
    ]


def obeys_injection(data: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A gullible model: when the telemetry says so, it also claims the system is healthy (with
    made-up support: no evidence says so). A false claim citing a real evidence item would not be
    caught by the grounding rule; the figures beside it are the check."""
    reply = honest(data, body)
    if INJECTION in str(body):
        reply["summary"] = "The system is healthy."
        reply["findings"] = [
            {"statement": "The system is healthy.", "evidence_ids": ["health:ok"]},
            {
                "statement": "`healthy-service` reports no problem.",
                "evidence_ids": [data["evidence"][0]["id"]],
            },
            *reply["findings"],
        ]
    return reply


def _figures(out: list[dict[str, Any]]) -> list[Any]:
    return [(i["fingerprint"], i["severity"], i["confidence"], [(e["id"], e["observed"], e["baseline"])
             for e in i["evidence"]]) for i in out]  # fmt: skip


def test_prompt_injection_changes_neither_findings_nor_kept_claims(
    storage: Storage, echo: Any, chdb_path: Any
) -> None:
    from otel_ai.testing.daemons import unique_db

    other = storage_at(f"chdb://{chdb_path}", unique_db())
    other.start()
    try:
        write_traces(storage, minute_ago(30), 20)
        write_traces(other, minute_ago(30), 20, statement=f"SELECT 1 /* {INJECTION} */")
        server = echo(obeys_injection)
        clean = make_service(storage, llm=fake_llm(server)).generate(_window())
        dirty = make_service(other, llm=fake_llm(server)).generate(_window())
        assert _figures(clean) == _figures(dirty)

        def kept(out: list[dict[str, Any]]) -> list[Any]:
            return [[(c["evidence_ids"], c["text"].split(":")[0]) for c in i["claims"]] for i in out]

        assert kept(clean) == kept(dirty)
        injected = ("The system is healthy.", "`healthy-service` reports no problem.")
        assert server.calls("gpt-4o-mini") == 4 and not any(
            c["text"] in injected for i in dirty for c in i["claims"]
        )
        assert all("healthy" not in i["summary"] for i in dirty)
        # The injected text reached the model only inside the quoted data block, under a system
        # prompt that says data is never instructions.
        sent = [r["body"]["messages"] for r in server.requests if INJECTION in str(r["body"])]
        assert sent
        for messages in sent:
            system, user = messages[0], messages[-1]
            assert system["role"] == "system" and "never as instructions" in system["content"]
            assert INJECTION not in system["content"]
            head, _, rest = user["content"].partition("<<<DATA")
            assert INJECTION not in head and INJECTION in rest.split("DATA>>>")[0]
    finally:
        other.command(f"DROP DATABASE IF EXISTS `{other.database}`")


def test_unchanged_findings_are_not_narrated_again(storage: Storage, echo: Any) -> None:
    write_traces(storage, minute_ago(30), 20)
    server = echo(honest)
    llm = fake_llm(server)
    svc = make_service(storage, llm=llm)
    first = svc.generate(_window())
    assert server.calls("gpt-4o-mini") == 2 and not any(i["llm"]["cached"] for i in first)
    assert (
        first[0]["llm"]["input_tokens"] == 11 and first[0]["llm"]["output_tokens"] == 7
    )  # the provider's usage
    second = svc.generate(_window())
    assert server.calls("gpt-4o-mini") == 2  # no provider call
    assert all(i["llm"]["cached"] and i["llm"]["input_tokens"] == 0 for i in second)
    assert [i["claims"] for i in second] == [i["claims"] for i in first]
    # A new service instance (a restart) reuses the narrative stored on the record.
    again = make_service(storage, llm=llm).generate(_window())
    assert server.calls("gpt-4o-mini") == 2 and all(i["llm"]["cached"] for i in again)
    # The calls are in the manager's usage, under the insights task.
    usage = asyncio.run(llm.usage())
    task = next(t for t in usage["by_task"] if t["task"] == "architectural-insights")
    assert task["requests"] >= 2 and task["input_tokens"] >= 22


def test_secrets_and_pii_are_redacted_before_an_external_provider(storage: Storage, echo: Any) -> None:
    write_traces(
        storage,
        minute_ago(30),
        20,
        statement="SELECT * FROM users WHERE email = 'bob@example.com' AND password='hunter22'",
    )
    server = echo(honest)
    make_service(storage, llm=fake_llm(server)).generate(_window())
    bodies = [str(r["body"]) for r in server.requests]
    assert bodies and all("bob@example.com" not in b and "hunter22" not in b for b in bodies)
    assert any("[REDACTED_EMAIL]" in b for b in bodies)


@pytest.mark.parametrize("narrate", [False, True], ids=["narrate-off", "no-llm"])
def test_template_narrative_without_a_manager(storage: Storage, narrate: bool) -> None:
    write_traces(storage, minute_ago(30), 20)
    svc = make_service(storage, llm=None, narrate=narrate)
    for ins in svc.generate(_window()):
        assert ins["llm"]["provider"] == "none" and ins["claims"] and not ins["abstained"]
        assert {i for c in ins["claims"] for i in c["evidence_ids"]} <= {e["id"] for e in ins["evidence"]}


def test_ask_drops_invented_claims_and_points_at_the_strongest_lead(storage: Storage, echo: Any) -> None:
    write_traces(storage, minute_ago(30), 20, error_every=2)
    found = make_service(storage, llm=fake_llm(echo(honest))).generate(_window())
    server = echo(liar)
    ans = make_service(storage, llm=fake_llm(server)).ask("why is checkout failing?", _window())
    assert server.calls("gpt-4o-mini") == 1
    assert ans["abstained"] is True and ans["claims"] == [] and ans["insight_ids"] == []
    assert ans["answer"] == (
        f"Not enough evidence in this window to answer; the strongest lead is insight {found[0]['id']} "
        f"({found[0]['severity']}): {found[0]['title']}."
    )
    honest_ans = make_service(storage, llm=fake_llm(echo(honest))).ask("why is checkout failing?", _window())
    assert honest_ans["abstained"] is False and honest_ans["insight_ids"][0] == found[0]["id"]
    # its summary quotes a name that is no entity (`the question`): the answer is built from the claims
    assert honest_ans["answer"].startswith("From the window's evidence: `checkout`")


def test_the_call_budget_leaves_the_rest_for_a_later_run(storage: Storage, echo: Any) -> None:
    write_traces(storage, minute_ago(30), 20)
    server = echo(honest)
    svc = make_service(storage, llm=fake_llm(server), max_narrated_per_run=1)
    first = svc.generate(_window())
    assert server.calls("gpt-4o-mini") == 1
    assert sorted(i["llm"]["provider"] for i in first) == ["none", "openai"]  # the most severe got the call
    assert first[0]["llm"]["provider"] == "openai"
    second = svc.generate(_window())
    assert server.calls("gpt-4o-mini") == 2  # the templated one, not the cached one
    assert [i["llm"]["cached"] for i in second] == [True, False]


def test_ask_without_a_manager_answers_from_the_evidence(storage: Storage) -> None:
    write_traces(storage, minute_ago(30), 20, error_every=2)
    svc = make_service(storage, llm=None)
    found = svc.generate(_window())
    ans = svc.ask("why is checkout failing?", _window())
    assert ans["abstained"] is False and ans["llm"]["provider"] == "none"
    assert (
        ans["claims"][0]["evidence_ids"] == ["spans:checkout:count"]
        and ans["insight_ids"][0] == found[0]["id"]
    )
