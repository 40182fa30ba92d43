"""Response cache: hit metadata, TTL, bounds, never errors or partial streams."""

from __future__ import annotations

import pytest

from otel_ai.llm import LLMResponse
from otel_ai.llm.cache import ResponseCache, cache_key
from otel_ai.llm.config import CacheConfig
from otel_ai.testing.llm_server import FakeLLMServer
from tests.llm.conftest import SleepRecorder, make_config, manager

OPENAI = {"name": "oa", "group": "smart", "provider": "openai", "model": "gpt-4o-mini"}


async def test_second_identical_call_is_a_hit_with_metadata(fake: FakeLLMServer) -> None:
    llm = manager(make_config(fake, [OPENAI]))
    first = await llm.generate("hi", temperature=0)
    second = await llm.generate("hi", temperature=0)
    assert not first.cached and second.cached and second.cache_age_s is not None
    assert second.text == first.text and second.cost_usd == 0.0 and first.cost_usd > 0
    assert fake.calls("gpt-4o-mini") == 1
    assert second.as_dict()["cache"]["hit"] is True
    usage = await llm.usage()
    assert usage["totals"]["cache_hits"] == 1 and usage["totals"]["requests"] == 2
    await llm.aclose()


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 10},
        {"schema_name": "report-summary"},
        {"task": "analysis"},
        {"system": "other"},
        {"cache": False},
    ],
    ids=["temperature", "max_tokens", "schema", "task", "system", "opt-out"],
)
async def test_key_includes_parameters_schema_and_task(
    fake: FakeLLMServer, change: dict[str, object]
) -> None:
    fake.reply("gpt-4o-mini", '{"title": "t", "summary": "s", "highlights": [], "recommendations": []}')
    llm = manager(make_config(fake, [OPENAI]))
    await llm.generate("hi", temperature=0)
    await llm.generate("hi", **{"temperature": 0, **change})  # type: ignore[arg-type]
    assert fake.calls("gpt-4o-mini") == 2
    await llm.aclose()


async def test_errors_are_never_cached(fake: FakeLLMServer, sleeper: SleepRecorder) -> None:
    fake.plan("gpt-4o-mini", "401")
    llm = manager(make_config(fake, [OPENAI]), sleep=sleeper)
    with pytest.raises(Exception, match="all providers failed"):
        await llm.generate("hi", model="oa")
    resp = await llm.generate("hi", model="oa")
    assert not resp.cached and resp.provider == "openai"
    await llm.aclose()


async def test_complete_stream_is_cached_and_replayed_as_a_stream(fake: FakeLLMServer) -> None:
    fake.reply("gpt-4o-mini", "a streamed and cached reply")
    llm = manager(make_config(fake, [OPENAI]))
    [i async for i in llm.stream("hi")]
    items = [i async for i in llm.stream("hi")]
    final = items[-1]
    assert isinstance(final, LLMResponse) and final.cached
    assert "".join(c.text for c in items[:-1]) == "a streamed and cached reply"  # type: ignore[union-attr]
    assert fake.calls("gpt-4o-mini") == 1
    await llm.aclose()


def test_ttl_entries_and_size_bounds() -> None:
    now = [0.0]
    cache = ResponseCache(CacheConfig(ttl_s=10, max_entries=2, max_entry_bytes=100), clock=lambda: now[0])
    assert cache.put("a", 1, 10) and cache.put("b", 2, 10)
    assert not cache.put("big", 3, 101) and cache.stats["skipped_oversize"] == 1
    cache.get("a")  # a is now most recent
    cache.put("c", 3, 10)
    assert cache.get("b") is None and cache.get("a") == (1, 0.0) and cache.stats["evictions"] == 1
    now[0] = 11
    assert cache.get("a") is None and cache.stats["expired"] == 1
    assert not ResponseCache(CacheConfig(max_entries=0)).put("x", 1, 1)


def test_cache_key_is_canonical() -> None:
    m = [{"role": "user", "content": "hi"}]
    assert cache_key("g", m, {"a": 1, "b": 2}, None, "1") == cache_key("g", m, {"b": 2, "a": 1}, None, "1")
    assert cache_key("g", m, {}, None, "1") != cache_key("g", m, {}, None, "2")
    assert cache_key("g", m, {}, None, "1") != cache_key("h", m, {}, None, "1")


async def test_degraded_fallback_answers_are_not_cached(fake: FakeLLMServer, sleeper: SleepRecorder) -> None:
    fake.plan("gpt-4o-mini", "401")
    llm = manager(make_config(fake, [OPENAI]), sleep=sleeper)
    first = await llm.generate("hi")
    assert first.provider == "rules" and first.fallbacks == ["smart"]
    second = await llm.generate("hi")  # the primary has recovered: no stale template from the cache
    assert second.provider == "openai" and not second.cached
    await llm.aclose()
