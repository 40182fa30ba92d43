"""Providers through the official SDKs against a loopback server speaking their wire formats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_ai.llm import BadResponse, LLMResponse, Timeout
from otel_ai.llm.errors import AuthFailed, ContextTooLarge, ProviderUnavailable, RateLimited
from otel_ai.testing.llm_server import FakeLLMServer
from tests.llm.conftest import SleepRecorder, make_config, manager

OPENAI = {"name": "oa", "group": "smart", "provider": "openai", "model": "gpt-4o-mini"}
ANTHROPIC = {"name": "claude", "group": "smart", "provider": "anthropic", "model": "claude-haiku-4-5"}
LOCAL = {"name": "lm", "group": "local", "provider": "local", "model": "qwen-local"}
SIMPLE = {"type": "object", "properties": {"severity": {"enum": ["low", "high"]}}, "required": ["severity"]}


async def test_openai_generate_usage_cost_and_sdk_settings(fake: FakeLLMServer) -> None:
    llm = manager(make_config(fake, [OPENAI]))
    resp = await llm.generate("hi")
    assert resp.text == "Hello from the fake server."
    assert (resp.provider, resp.deployment, resp.model) == ("openai", "oa", "gpt-4o-mini-0001")
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 7)
    assert resp.cost_usd == pytest.approx(11 * 1.5e-07 + 7 * 6.0e-07)  # bundled price table
    req = fake.requests[-1]
    assert req["body"]["max_completion_tokens"] == 1024
    assert req["headers"]["authorization"] == "Bearer sk-test-not-a-real-key-000000"
    assert req["headers"].get("x-stainless-retry-count", "0") == "0"
    await llm.aclose()


async def test_openai_stream_chunks_and_final_usage(fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", "streamed reply text, in pieces")
    llm = manager(make_config(fake, [OPENAI]))
    items = [i async for i in llm.stream("hi")]
    chunks, final = items[:-1], items[-1]
    assert isinstance(final, LLMResponse)
    assert (
        len(chunks) > 3 and "".join(c.text for c in chunks) == "streamed reply text, in pieces" == final.text
    )
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.estimated) == (11, 7, False)
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    await llm.aclose()


async def test_anthropic_schema_by_forced_tool_and_cache_tokens_in_input(fake: FakeLLMServer) -> None:
    fake.reply("claude-haiku-4-5", json.dumps({"severity": "high"}))
    llm = manager(make_config(fake, [ANTHROPIC]))
    resp = await llm.generate("classify", schema=SIMPLE, system="be terse")
    assert resp.json == {"severity": "high"}
    body = fake.requests[-1]["body"]
    assert body["tool_choice"]["type"] == "tool" and body["tools"][0]["input_schema"] == SIMPLE
    assert body["system"] == "be terse" and all(m["role"] != "system" for m in body["messages"])
    assert resp.usage.input_tokens == 25  # 20 + cache_read 5 (GenAI semconv rule)
    assert resp.usage.cache_read_input_tokens == 5
    await llm.aclose()


async def test_anthropic_stream_usage_is_cumulative_not_summed(fake: FakeLLMServer) -> None:
    fake.reply("claude-haiku-4-5", "anthropic streaming works")
    llm = manager(make_config(fake, [ANTHROPIC]))
    items = [i async for i in llm.stream("hi")]
    final = items[-1]
    assert isinstance(final, LLMResponse)
    assert final.text == "anthropic streaming works"
    assert final.usage.output_tokens == 12  # last message_delta wins (5 then 12, never 17)
    assert final.usage.input_tokens == 25
    assert final.finish_reason == "end_turn"
    await llm.aclose()


@pytest.mark.parametrize(
    "reply",
    [
        '<think>the user wants json\n{"severity": "low"} maybe</think>\n```json\n{"severity": "high"}\n```',
        'Sure! Here it is: {"severity": "high"} Hope it helps.',
        '```\n{"severity": "high"}\n```',
    ],
    ids=["think-then-fence", "prose-around", "bare-fence"],
)
async def test_local_tolerates_think_blocks_and_fences(fake: FakeLLMServer, reply: str) -> None:
    fake.reply("qwen-local", reply)
    llm = manager(make_config(fake, [LOCAL]))
    resp = await llm.generate("classify", schema=SIMPLE)
    assert resp.json == {"severity": "high"} and resp.deployment == "lm"
    rf = fake.requests[-1]["body"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == SIMPLE
    await llm.aclose()


async def test_local_stream_drops_think_block(fake: FakeLLMServer) -> None:
    fake.reply("qwen-local", "<think>secret reasoning here</think>The answer is 42.")
    llm = manager(make_config(fake, [LOCAL]))
    items = [i async for i in llm.stream("q")]
    assert items[-1].text == "The answer is 42."  # type: ignore[union-attr]
    await llm.aclose()


async def test_local_without_json_schema_support_gets_schema_in_prompt(fake: FakeLLMServer) -> None:
    fake.reply("qwen-local", '{"severity": "low"}')
    llm = manager(make_config(fake, [{**LOCAL, "supports_json_schema": False}]))
    resp = await llm.generate("classify", schema=SIMPLE)
    body = fake.requests[-1]["body"]
    assert "response_format" not in body and "JSON Schema" in body["messages"][0]["content"]
    assert resp.json == {"severity": "low"}
    await llm.aclose()


async def test_429_retry_after_ms_is_honoured_then_succeeds(
    fake: FakeLLMServer, sleeper: SleepRecorder
) -> None:
    fake.plan("gpt-4o-mini", "429")
    llm = manager(make_config(fake, [OPENAI]), sleep=sleeper)
    resp = await llm.generate("hi")
    assert resp.deployment == "oa" and resp.attempts == 2
    assert len(sleeper.delays) == 1 and sleeper.delays[0] >= 0.05 - 1e-9
    assert fake.calls("gpt-4o-mini") == 2
    await llm.aclose()


async def test_long_retry_after_moves_to_next_group_without_waiting(
    fake: FakeLLMServer, sleeper: SleepRecorder
) -> None:
    fake.plan("gpt-4o-mini", "429-long")
    llm = manager(make_config(fake, [OPENAI]), sleep=sleeper)
    resp = await llm.generate("hi")
    assert resp.provider == "rules" and resp.fallbacks == ["smart"] and sleeper.delays == []
    await llm.aclose()


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("500", ProviderUnavailable),
        ("401", AuthFailed),
        ("400ctx", ContextTooLarge),
        ("malformed", BadResponse),
        ("429-long", RateLimited),
    ],
    ids=["500", "401", "context", "malformed-json", "429"],
)
async def test_sdk_errors_are_typed_and_fall_back(
    fake: FakeLLMServer, sleeper: SleepRecorder, behaviour: str, error: Any
) -> None:
    fake.plan("gpt-4o-mini", *[behaviour] * 5)
    llm = manager(make_config(fake, [OPENAI]), sleep=sleeper)
    resp = await llm.generate("hi")
    assert resp.provider == "rules"  # the chain still answered
    status = {d["name"]: d for d in llm.providers_status()["deployments"]}
    assert status["oa"]["failures"] >= 1 and status["oa"]["last_error"].startswith(error.error_type)
    assert error.retryable == (behaviour in ("500", "429-long"))
    await llm.aclose()


async def test_hanging_provider_hits_the_call_deadline(fake: FakeLLMServer, sleeper: SleepRecorder) -> None:
    fake.plan("gpt-4o-mini", "hang", "hang", "hang")
    cfg = make_config(fake, [OPENAI], timeouts={"call_s": 0.3, "total_s": 5.0}, retry={"max_attempts": 1})
    llm = manager(cfg, sleep=sleeper)
    resp = await llm.generate("hi")
    # the hang ends in a 500 after 3 s: a `timeout` error proves the call deadline fired first
    assert resp.provider == "rules"
    assert llm.providers_status()["deployments"][0]["last_error"].startswith("timeout")
    await llm.aclose()


async def test_slow_stream_after_first_chunk_raises_timeout_not_silent_switch(fake: FakeLLMServer) -> None:
    fake.plan("gpt-4o-mini", "slowstream")
    fake.reply("gpt-4o-mini", "first chunk then silence")
    llm = manager(make_config(fake, [OPENAI], timeouts={"call_s": 0.3, "total_s": 5.0}))
    got = []
    with pytest.raises(Timeout):
        async for item in llm.stream("hi"):
            got.append(item)
    assert [c.text for c in got] == ["first"]  # type: ignore[union-attr]
    await llm.aclose()


async def test_cancelling_a_stream_closes_the_provider_call(fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", "a fairly long reply that we stop reading early")
    llm = manager(make_config(fake, [OPENAI]))
    gen = llm.stream("hi")
    first = await anext(gen)
    await gen.aclose()  # what a client disconnect does
    assert first.text == "a fai"  # type: ignore[union-attr]
    assert llm.deployments[0].breaker.state == "closed"  # a cancel is not a failure
    assert llm.cache.stats["stores"] == 0  # partial streams are never cached
    await llm.aclose()


@pytest.mark.parametrize(
    ("behaviour", "error_type"),
    [
        ("500", "provider_unavailable"),
        ("401", "auth_failed"),
        ("malformed", "bad_response"),
        ("400ctx", "context_too_large"),
    ],
    ids=["500", "401", "malformed-json", "context"],
)
async def test_anthropic_errors_are_typed_and_fall_back(
    fake: FakeLLMServer, sleeper: SleepRecorder, behaviour: str, error_type: str
) -> None:
    fake.plan("claude-haiku-4-5", *[behaviour] * 5)
    llm = manager(make_config(fake, [ANTHROPIC]), sleep=sleeper)
    resp = await llm.generate("hi")
    assert resp.provider == "rules"
    assert (llm.deployments[0].last_error or "").startswith(error_type)
    await llm.aclose()


async def test_anthropic_429_retry_after_then_success(fake: FakeLLMServer, sleeper: SleepRecorder) -> None:
    fake.plan("claude-haiku-4-5", "429")
    llm = manager(make_config(fake, [ANTHROPIC]), sleep=sleeper)
    resp = await llm.generate("hi")
    assert resp.provider == "anthropic" and resp.attempts == 2 and sleeper.delays[0] >= 0.05 - 1e-9
    await llm.aclose()


async def test_anthropic_mid_stream_error_event_is_typed(fake: FakeLLMServer) -> None:
    fake.plan("claude-haiku-4-5", "overloaded")
    fake.reply("claude-haiku-4-5", "partial answer")
    llm = manager(make_config(fake, [ANTHROPIC]))
    got = []
    with pytest.raises(ProviderUnavailable, match="verloaded"):
        async for item in llm.stream("hi"):
            got.append(item)
    assert [c.text for c in got] == ["parti"]  # type: ignore[union-attr]
    assert llm.deployments[0].last_error.startswith("provider_unavailable")  # type: ignore[union-attr]
    await llm.aclose()
