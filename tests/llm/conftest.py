from __future__ import annotations

from typing import Any

import pytest

from otel_ai.llm import LLMConfig, LLMManager
from otel_ai.testing.llm_server import FakeLLMServer


def make_config(fake: FakeLLMServer, deployments: list[dict[str, Any]], **extra: Any) -> LLMConfig:
    """Config with the given deployments pointed at ``fake``; embedded off (fast tests)."""
    deps = []
    for d in deployments:
        d = dict(d)
        if d.get("provider") in ("openai", "local"):
            d.setdefault("base_url", fake.url + "/v1")
        if d.get("provider") == "anthropic":
            d.setdefault("base_url", fake.url)
        d.setdefault("api_key", "sk-test-not-a-real-key-000000")
        deps.append(d)
    base: dict[str, Any] = {
        "deployments": deps,
        "embedded": {"enabled": False},
        "timeouts": {"call_s": 1.0, "total_s": 10.0},
        "breaker": {"cooldown_s": 60},
    }
    for k, v in extra.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return LLMConfig.model_validate(base)


class SleepRecorder:
    """Injected ``sleep``: records backoff delays and sleeps only a token amount."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        import asyncio

        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def sleeper() -> SleepRecorder:
    return SleepRecorder()


def manager(config: LLMConfig, **kw: Any) -> LLMManager:
    return LLMManager(config, **kw)
