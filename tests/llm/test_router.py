"""Breaker, strategies, explicit override, context-window filter, backoff and deadlines."""

from __future__ import annotations

import random
from typing import Any

import pytest

from otel_ai.llm import AllProvidersFailed, InvalidRequest
from otel_ai.llm.breaker import CircuitBreaker
from otel_ai.llm.config import BreakerConfig, LLMConfig, RetryConfig
from otel_ai.llm.router import backoff_delay
from otel_ai.testing.llm_server import FakeLLMServer
from tests.llm.conftest import SleepRecorder, make_config, manager

OPENAI = {"name": "oa", "group": "smart", "provider": "openai", "model": "gpt-4o-mini"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_on_consecutive_failures_then_half_open_probe_closes() -> None:
    clock = Clock()
    br = CircuitBreaker(BreakerConfig(failure_threshold=3, cooldown_s=30), clock)
    for _ in range(2):
        br.record(False)
    assert br.state == "closed"
    br.record(False)
    assert br.state == "open" and not br.allow()
    clock.t += 30
    assert br.state == "half_open"
    assert br.allow() and not br.allow()  # exactly one probe
    br.record(True)
    assert br.state == "closed" and br.allow()


def test_breaker_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = Clock()
    br = CircuitBreaker(BreakerConfig(failure_threshold=1, cooldown_s=10), clock)
    br.record(False)
    clock.t += 10
    assert br.allow()
    br.record(False)
    assert br.state == "open"
    clock.t += 9
    assert br.state == "open"


def test_breaker_ratio_trips_without_consecutive_failures() -> None:
    clock = Clock()
    br = CircuitBreaker(
        BreakerConfig(failure_threshold=100, failure_ratio=0.5, minimum_requests=6, window_s=60), clock
    )
    for ok in (True, False, True, False, True):
        br.record(ok)
    assert br.state == "closed"  # below minimum_requests
    br.record(False)  # 3 of 6 failed
    assert br.state == "open"


def test_breaker_window_forgets_old_failures() -> None:
    clock = Clock()
    br = CircuitBreaker(
        BreakerConfig(failure_threshold=100, failure_ratio=0.5, minimum_requests=4, window_s=10), clock
    )
    for _ in range(3):
        br.record(False)
        br.record(True)
    clock.t += 11
    for _ in range(3):
        br.record(True)
    br.record(False)
    assert br.state == "closed"


async def test_single_deployment_group_breaker_stops_calling_dead_primary(
    fake: FakeLLMServer, sleeper: SleepRecorder
) -> None:
    """LiteLLM #40405: a one-deployment group must be cooled down too."""
    fake.plan("gpt-4o-mini", *["500"] * 50)
    cfg = make_config(
        fake, [OPENAI], breaker={"failure_threshold": 3, "cooldown_s": 60}, retry={"max_attempts": 2}
    )
    llm = manager(cfg, sleep=sleeper)
    for _ in range(10):
        resp = await llm.generate("hi", cache=False)
        assert resp.provider == "rules"
    assert fake.calls("gpt-4o-mini") == 3  # then the breaker kept every later request away
    status = {d["name"]: d for d in llm.providers_status()["deployments"]}
    assert status["oa"]["breaker"]["state"] == "open" and status["oa"]["status"] == "down"
    await llm.aclose()


async def test_breaker_recovers_through_a_half_open_probe(
    fake: FakeLLMServer, sleeper: SleepRecorder
) -> None:
    fake.plan("gpt-4o-mini", "500", "500")
    cfg = make_config(
        fake, [OPENAI], breaker={"failure_threshold": 2, "cooldown_s": 0.05}, retry={"max_attempts": 2}
    )
    llm = manager(cfg, sleep=sleeper)
    assert (await llm.generate("a", cache=False)).provider == "rules"
    assert llm.deployments[0].breaker.state in ("open", "half_open")
    import asyncio

    await asyncio.sleep(0.06)
    resp = await llm.generate("b", cache=False)
    assert resp.provider == "openai" and llm.deployments[0].breaker.state == "closed"
    await llm.aclose()


async def test_retry_moves_to_the_other_deployment_of_the_group_first(
    fake: FakeLLMServer, sleeper: SleepRecorder
) -> None:
    cfg = make_config(
        fake,
        [OPENAI, {"name": "oa2", "group": "smart", "provider": "openai", "model": "gpt-4.1-nano"}],
        strategy="cost",
    )
    fake.plan("gpt-4.1-nano", "500")  # the cost strategy tries the cheaper nano first
    llm = manager(cfg, sleep=sleeper)
    resp = await llm.generate("hi")
    assert resp.deployment == "oa" and resp.attempts == 2 and sleeper.delays == []  # no backoff: switched
    assert fake.calls("gpt-4.1-nano") == 1
    await llm.aclose()


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("cost", "cheap"), ("latency", "fast"), ("balanced", "cheap")],
    ids=["cost", "latency", "balanced"],
)
async def test_strategies(fake: FakeLLMServer, strategy: str, expected: str) -> None:
    deps = [
        {"name": "cheap", "group": "g", "provider": "openai", "model": "gpt-4.1-nano"},
        {"name": "fast", "group": "g", "provider": "openai", "model": "gpt-4o"},
    ]
    llm = manager(make_config(fake, deps, strategy=strategy))
    by = {d.name: d for d in llm.deployments}
    by["cheap"].ewma_latency_s, by["fast"].ewma_latency_s = 0.5, 0.1
    if strategy == "balanced":
        by["cheap"].ewma_latency_s = 0.12  # nearly as fast, 25x cheaper
    resp = await llm.generate("hi", model="g")
    assert resp.deployment == expected
    await llm.aclose()


async def test_explicit_model_override_and_unknown_model(fake: FakeLLMServer) -> None:
    deps = [OPENAI, {"name": "other", "group": "second", "provider": "openai", "model": "gpt-4o"}]
    llm = manager(make_config(fake, deps))
    assert (await llm.generate("hi", model="other")).deployment == "other"
    assert (await llm.generate("hi", model="smart")).deployment == "oa"
    with pytest.raises(InvalidRequest, match="unknown model group or deployment"):
        await llm.generate("hi", model="nope")
    await llm.aclose()


async def test_override_to_failing_deployment_raises_all_providers_failed(
    fake: FakeLLMServer, sleeper: SleepRecorder
) -> None:
    fake.plan("gpt-4o-mini", *["500"] * 5)
    llm = manager(make_config(fake, [OPENAI]), sleep=sleeper)
    with pytest.raises(AllProvidersFailed) as info:
        await llm.generate("hi", model="oa")
    assert info.value.retryable and "ProviderUnavailable" in info.value.message
    assert len(sleeper.delays) == 2  # max_attempts=3 → two backoffs inside the group
    await llm.aclose()


async def test_context_window_filter_skips_small_models(fake: FakeLLMServer) -> None:
    deps: list[dict[str, Any]] = [
        {
            "name": "tiny",
            "group": "g",
            "provider": "openai",
            "model": "gpt-4.1-nano",
            "context_window": 100,
            "max_output_tokens": 10,
        },
        {"name": "big", "group": "g", "provider": "openai", "model": "gpt-4o"},
    ]
    llm = manager(make_config(fake, deps, strategy="cost"))
    resp = await llm.generate("word " * 400)
    assert resp.deployment == "big"
    assert fake.calls("gpt-4.1-nano") == 0
    await llm.aclose()


async def test_task_chains_from_config(fake: FakeLLMServer) -> None:
    deps = [OPENAI, {"name": "lm", "group": "local", "provider": "local", "model": "m"}]
    cfg = make_config(fake, deps, tasks={"report-summary": ["local"], "general": ["smart", "local"]})
    assert cfg.chain_for("report-summary") == ["local", "rules"]
    assert cfg.chain_for("analysis") == ["smart", "local", "rules"]
    llm = manager(cfg)
    assert (await llm.generate("hi", task="report-summary")).deployment == "lm"
    with pytest.raises(InvalidRequest, match="task"):
        await llm.generate("hi", task="poetry")
    await llm.aclose()


def test_config_rejects_unknown_groups_and_extra_keys() -> None:
    with pytest.raises(ValueError, match="unknown group"):
        LLMConfig.model_validate({"tasks": {"analysis": ["missing"]}})
    with pytest.raises(ValueError, match="extra"):
        LLMConfig.model_validate({"stratgey": "cost"})


def test_no_configuration_chain_is_embedded_then_rules() -> None:
    cfg = LLMConfig()
    assert cfg.chain_for("anomaly-explanation") == ["embedded", "rules"]
    assert cfg.chain_for("general") == ["embedded", "rules"]


@pytest.mark.parametrize(
    ("attempt", "retry_after", "low", "high"),
    [(0, None, 0.375, 0.5), (3, None, 3.0, 4.0), (10, None, 6.0, 8.0), (0, 2.5, 2.5, 2.5)],
    ids=["first", "fourth", "capped", "retry-after-floor"],
)
def test_backoff_delay(attempt: int, retry_after: float | None, low: float, high: float) -> None:
    rng = random.Random(7)
    for _ in range(20):
        d = backoff_delay(attempt, RetryConfig(), retry_after, rng)
        assert low <= d <= high


async def test_active_probe_updates_health(fake: FakeLLMServer) -> None:
    fake.plan("gpt-4o", "401")
    deps = [OPENAI, {"name": "bad", "group": "g2", "provider": "openai", "model": "gpt-4o"}]
    llm = manager(make_config(fake, deps))
    status = {d["name"]: d for d in (await llm.probe())["deployments"]}
    assert (
        status["oa"]["calls"] == 1
        and status["oa"]["last_latency_ms"] is not None
        and status["oa"]["last_error"] is None
    )
    assert status["bad"]["last_error"].startswith("auth_failed") and status["rules"]["calls"] == 1
    assert fake.requests[0]["body"]["max_completion_tokens"] == 1
    await llm.aclose()


async def test_total_deadline_still_ends_with_rules(fake: FakeLLMServer) -> None:
    fake.plan("gpt-4o-mini", "hang", "hang", "hang")
    cfg = make_config(fake, [OPENAI], timeouts={"call_s": 5.0, "total_s": 0.4})
    llm = manager(cfg)
    resp = await llm.generate("hi", schema_name="report-summary")
    assert resp.provider == "rules"  # call_s (5 s) > the 3 s hang: only the total deadline yields `timeout`
    assert llm.deployments[0].last_error.startswith("timeout")  # type: ignore[union-attr]
    await llm.aclose()


def test_auto_env_deployments_only_when_enabled_and_key_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-000000000000000000")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert LLMConfig().chain_for("analysis") == ["embedded", "rules"]  # offline by default
    cfg = LLMConfig.model_validate({"auto_env_deployments": True})
    assert cfg.chain_for("analysis") == ["openai", "embedded", "rules"]
    (dep,) = [d for d in cfg.all_deployments() if d.provider == "openai"]
    assert dep.resolved_key() == "sk-from-env-000000000000000000" and dep.api_key is None
