"""Routing: model groups of deployments, task → group chains, strategies, filters, backoff.

Filters run first (breaker, context window, per-request exclusions), then the strategy orders
what is left: ``cost`` (cheapest estimated call), ``latency`` (lowest EWMA of measured latency;
unmeasured deployments first so they get measured), ``balanced`` (sum of both, each normalised
within the group). An explicit model (a deployment name or a group name) overrides the chain.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from otel_ai.llm.breaker import CircuitBreaker
from otel_ai.llm.config import EXTERNAL_PROVIDERS, LLMConfig, RetryConfig
from otel_ai.llm.errors import InvalidRequest
from otel_ai.llm.prices import Price, price_for
from otel_ai.llm.providers import Provider, make_provider

EWMA_ALPHA = 0.3


@dataclass
class Deployment:
    """A configured deployment plus its live state (breaker, latency, counters)."""

    name: str
    group: str
    provider: Provider
    price: Price
    context_window: int
    max_output_tokens: int
    redact: bool
    breaker: CircuitBreaker
    ewma_latency_s: float | None = None
    last_latency_s: float | None = None
    last_error: str | None = None
    last_ok_at: float | None = None
    calls: int = 0
    failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.provider.kind

    @property
    def model(self) -> str:
        return self.provider.deployment.model

    def observe(self, ok: bool, latency_s: float | None, error: str | None = None) -> None:
        self.calls += 1
        if latency_s is not None and ok:
            self.last_latency_s = latency_s
            self.ewma_latency_s = (
                latency_s
                if self.ewma_latency_s is None
                else EWMA_ALPHA * latency_s + (1 - EWMA_ALPHA) * self.ewma_latency_s
            )
        if ok:
            self.last_ok_at = time.time()
        else:
            self.failures += 1
            self.last_error = error

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "provider": self.kind,
            "model": self.model,
            "status": {"closed": "ok", "half_open": "probing", "open": "down"}[self.breaker.state],
            "breaker": self.breaker.snapshot(),
            "last_latency_ms": None if self.last_latency_s is None else round(self.last_latency_s * 1000, 3),
            "ewma_latency_ms": None if self.ewma_latency_s is None else round(self.ewma_latency_s * 1000, 3),
            "last_error": self.last_error,
            "calls": self.calls,
            "failures": self.failures,
            "context_window": self.context_window,
            "redacted": self.redact,
            **self.provider.status(),
        }


def build_deployments(config: LLMConfig) -> list[Deployment]:
    out = []
    for dc in config.all_deployments():
        provider = make_provider(dc, config)
        price = price_for(dc, config)
        window = dc.context_window or price.max_input_tokens or provider.default_context_window
        redact = (
            dc.redact
            if dc.redact is not None
            else (
                config.redaction.enabled
                if dc.provider in EXTERNAL_PROVIDERS
                else dc.provider == "local" and config.redaction.local
            )
        )
        out.append(
            Deployment(
                dc.name,
                dc.group,
                provider,
                price,
                window,
                dc.max_output_tokens,
                redact,
                CircuitBreaker(config.breaker),
            )
        )
    return out


class Router:
    def __init__(self, config: LLMConfig, deployments: list[Deployment]) -> None:
        self.config = config
        self.deployments = {d.name: d for d in deployments}
        self.groups: dict[str, list[Deployment]] = {}
        for d in deployments:
            self.groups.setdefault(d.group, []).append(d)

    def chain(self, task: str, model: str | None) -> list[str]:
        """Group chain (or a single ``deployment:NAME`` entry) for a request."""
        if model:
            if model in self.groups:
                return [model]
            if model in self.deployments:
                return [f"deployment:{model}"]
            known = sorted(set(self.groups) | set(self.deployments))
            raise InvalidRequest(f"model: unknown model group or deployment {model!r}; known: {known}")
        return [g for g in self.config.chain_for(task) if g in self.groups]

    def members(self, entry: str) -> list[Deployment]:
        if entry.startswith("deployment:"):
            return [self.deployments[entry.split(":", 1)[1]]]
        return list(self.groups.get(entry, []))

    def order(
        self, entry: str, tokens_in: int, max_tokens: int, exclude: set[str]
    ) -> tuple[list[Deployment], list[str]]:
        """Usable deployments of ``entry`` best first, and why others were filtered out."""
        usable, skipped = [], []
        for d in self.members(entry):
            if d.name in exclude:
                continue
            if not d.breaker.available():
                skipped.append(f"{d.name}: circuit open")
                continue
            if tokens_in + min(max_tokens, d.max_output_tokens) > d.context_window and d.kind != "rules":
                skipped.append(
                    f"{d.name}: prompt of ~{tokens_in} tokens exceeds context window {d.context_window}"
                )
                continue
            usable.append(d)
        return self._rank(usable, tokens_in, max_tokens), skipped

    def _rank(self, deps: list[Deployment], tokens_in: int, max_tokens: int) -> list[Deployment]:
        if len(deps) < 2:
            return deps

        def cost(d: Deployment) -> float:
            return d.price.input_cost_per_token * tokens_in + d.price.output_cost_per_token * min(
                max_tokens, d.max_output_tokens
            )

        def lat(d: Deployment) -> float:
            return d.ewma_latency_s if d.ewma_latency_s is not None else 0.0

        strategy = self.config.strategy
        if strategy == "cost":
            key = {d.name: (cost(d), lat(d), -d.provider.deployment.weight) for d in deps}
        elif strategy == "latency":
            key = {d.name: (lat(d), cost(d), -d.provider.deployment.weight) for d in deps}
        else:
            max_c = max(cost(d) for d in deps) or 1.0
            max_l = max(lat(d) for d in deps) or 1.0
            key = {
                d.name: (cost(d) / max_c + lat(d) / max_l, -d.provider.deployment.weight, 0.0) for d in deps
            }
        return sorted(deps, key=lambda d: key[d.name])


def backoff_delay(
    attempt: int, retry: RetryConfig, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter; a server's ``Retry-After`` is a floor."""
    r = rng or random
    base = min(retry.initial_delay_s * (2**attempt), retry.max_delay_s)
    delay = base * (1 - retry.jitter * r.random())
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
