"""Bundled price table (USD per token, LiteLLM key names), overridable per model in config and
per deployment. Never fetched at run time. Unknown models cost 0 and are flagged ``priced=False``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from otel_ai.llm.config import DeploymentConfig, LLMConfig
from otel_ai.llm.types import Usage


@dataclass(frozen=True)
class Price:
    input_cost_per_token: float
    output_cost_per_token: float
    max_input_tokens: int | None = None
    known: bool = True

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input_cost_per_token + usage.output_tokens * self.output_cost_per_token
        )


@cache
def bundled_prices() -> dict[str, dict[str, float]]:
    raw = json.loads(resources.files("otel_ai.llm").joinpath("prices.json").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def _lookup(model: str) -> dict[str, float] | None:
    table = bundled_prices()
    if model in table:
        return table[model]
    # dated snapshots ("gpt-4o-2024-08-06") fall back to the longest matching prefix
    best = max((k for k in table if model.startswith(k + "-")), key=len, default=None)
    return table[best] if best else None


def price_for(deployment: DeploymentConfig, config: LLMConfig) -> Price:
    if deployment.provider in ("local", "embedded", "rules") and deployment.input_cost_per_token is None:
        base: dict[str, float] | None = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    else:
        base = _lookup(deployment.model)
    override = config.prices.get(deployment.model)
    if override is not None:
        base = override.model_dump()
    known = base is not None
    base = dict(base or {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0})
    if deployment.input_cost_per_token is not None:
        base["input_cost_per_token"] = deployment.input_cost_per_token
        known = True
    if deployment.output_cost_per_token is not None:
        base["output_cost_per_token"] = deployment.output_cost_per_token
    max_in = base.get("max_input_tokens")
    return Price(
        float(base["input_cost_per_token"]),
        float(base["output_cost_per_token"]),
        int(max_in) if max_in else None,
        known,
    )
