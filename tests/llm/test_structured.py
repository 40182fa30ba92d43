"""Structured output: validation, one repair retry, fallback, rules as the last link."""

from __future__ import annotations

import json

import pytest

from otel_ai.llm import SCHEMAS, BadResponse, InvalidRequest
from otel_ai.llm.providers.rules import fill_insight, minimal_instance
from otel_ai.llm.structured import ThinkFilter, extract_json, validate
from otel_ai.testing.llm_server import FakeLLMServer
from tests.llm.conftest import make_config, manager

OPENAI = {"name": "oa", "group": "smart", "provider": "openai", "model": "gpt-4o-mini"}
EVIDENCE = {
    "subject": "checkout",
    "evidence": [
        {"id": "e1", "entity": "checkout", "summary": "p95 5x baseline", "observed": 1.2, "baseline": 0.24},
        {"id": "e2", "entity": "payment", "summary": "error rate 12%"},
    ],
}
GOOD = {
    "title": "Checkout slow",
    "summary": "s",
    "hypotheses": [{"statement": "payment errors", "evidence_ids": ["e2"]}],
    "impact": "checkout",
    "recommendations": [],
    "abstained": False,
}


async def test_invalid_then_valid_reply_uses_one_repair_retry(fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", '{"title": "missing fields"}', json.dumps(GOOD))
    llm = manager(make_config(fake, [OPENAI]))
    resp = await llm.generate("explain", schema_name="anomaly-explanation", data=EVIDENCE)
    assert resp.provider == "openai" and resp.json == GOOD
    repair = fake.requests[-1]["body"]["messages"]
    assert "invalid" in repair[-1]["content"] and repair[-2]["role"] == "assistant"
    assert resp.usage.input_tokens == 22  # both calls are accounted
    await llm.aclose()


async def test_still_invalid_after_repair_falls_back_to_rules(fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", "no json at all")
    llm = manager(make_config(fake, [OPENAI]))
    resp = await llm.generate(
        "explain", task="anomaly-explanation", schema_name="anomaly-explanation", data=EVIDENCE
    )
    assert resp.provider == "rules" and resp.fallbacks == ["smart"]
    assert validate(resp.json, SCHEMAS["anomaly-explanation"]) is None
    assert [h["evidence_ids"] for h in resp.json["hypotheses"]] == [["e1"], ["e2"]]
    assert fake.calls("gpt-4o-mini") == 2  # first try + one repair, then no more
    assert llm.deployments[0].breaker.snapshot()["consecutive_failures"] == 0  # schema misses are not outages
    await llm.aclose()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_rules_fill_every_insight_schema_deterministically(name: str) -> None:
    a, b = fill_insight(name, EVIDENCE), fill_insight(name, EVIDENCE)
    assert a == b and validate(a, SCHEMAS[name]) is None
    empty = fill_insight(name, {"evidence": []})
    assert validate(empty, SCHEMAS[name]) is None


def test_rules_abstain_without_evidence() -> None:
    assert fill_insight("anomaly-explanation", None)["abstained"] is True


def test_minimal_instance_satisfies_other_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "minLength": 5},
            "b": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
            "c": {"enum": ["x", "y"]},
        },
        "required": ["a", "b", "c"],
    }
    assert validate(minimal_instance(schema), schema) is None


async def test_custom_schema_with_no_model_still_validates() -> None:
    from otel_ai.llm import LLMConfig, LLMManager

    llm = LLMManager(LLMConfig.model_validate({"embedded": {"enabled": False}}))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    resp = await llm.generate("anything", schema=schema)
    assert resp.json == {"ok": False} and resp.provider == "rules"
    await llm.aclose()


async def test_bad_schema_is_rejected_before_any_call() -> None:
    from otel_ai.llm import LLMManager

    llm = LLMManager()
    with pytest.raises(InvalidRequest, match="schema"):
        await llm.generate("x", schema={"type": "nonsense"})
    with pytest.raises(InvalidRequest, match="schema_name"):
        await llm.generate("x", schema_name="poem")
    await llm.aclose()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('<think>{"a": 0}</think>{"a": 1}', {"a": 1}),
        ("Result: [1, 2] done", [1, 2]),
        ("<think>unterminated {", None),
    ],
    ids=["plain", "fence", "think", "prose-array", "unterminated-think"],
)
def test_extract_json(text: str, value: object) -> None:
    if value is None:
        with pytest.raises(BadResponse):
            extract_json(text)
    else:
        assert extract_json(text) == value


def test_think_filter_across_chunk_boundaries() -> None:
    f = ThinkFilter()
    pieces = ["Hel", "lo <thi", "nk>hidden</th", "ink> world", "<", "b>"]
    assert "".join(f.feed(p) for p in pieces) == "Hello  world<b>"


async def test_truncated_reply_skips_the_pointless_repair(fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", '{"title": "cut')
    fake.plan("gpt-4o-mini", "length")
    llm = manager(make_config(fake, [OPENAI]))
    resp = await llm.generate("explain", schema_name="report-summary", data=EVIDENCE)
    assert resp.provider == "rules" and fake.calls("gpt-4o-mini") == 1
    assert "truncated at max_tokens" in (llm.deployments[0].last_error or "")
    await llm.aclose()
