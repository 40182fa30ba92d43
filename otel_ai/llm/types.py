"""Domain values of the LLM manager: messages, requests, chunks, responses (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    estimated: bool = False  # the provider sent none (e.g. an interrupted stream): counted locally

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "estimated": self.estimated,
        }


@dataclass(frozen=True)
class GenerateRequest:
    """What a caller asks for. ``data`` is telemetry/evidence, quoted into the prompt as data."""

    messages: tuple[Message, ...]
    task: str = "general"
    model: str | None = None  # a group name or a deployment name: explicit override
    schema: dict[str, Any] | None = None
    schema_name: str | None = None
    data: Any = None
    temperature: float | None = None
    max_tokens: int | None = None
    cache: bool = True
    conversation_id: str | None = None


class CallOptions(TypedDict, total=False):
    """The keywords of :meth:`LLMManager.generate` besides the prompt (see :class:`GenerateRequest`)."""

    task: str | None  # a task type (llm.tasks): which model groups, in which order
    model: str | None  # a group or deployment name: an explicit override of the chain
    schema: dict[str, Any] | None  # a JSON Schema the reply must validate against
    schema_name: str | None  # a named schema (otel_ai.llm.schemas) instead of ``schema``
    data: Any  # telemetry/evidence, quoted into the prompt as data (never as instructions)
    temperature: float | None
    max_tokens: int | None
    cache: bool  # serve and store the answer in the response cache (default True)


class GenerateOptions(CallOptions, total=False):
    """:class:`CallOptions` plus the conversation and message keywords."""

    messages: list[dict[str, str]] | list[Message] | None  # instead of (or before) ``prompt``
    system: str | None  # the system prompt (default: the manager's)
    conversation_id: str | None  # continue this conversation (its history goes first)


@dataclass(frozen=True)
class ProviderCall:
    """What a provider receives: final messages (redacted if external), limits, optional schema."""

    messages: tuple[Message, ...]
    model: str
    max_tokens: int
    temperature: float | None = None
    schema: dict[str, Any] | None = None
    schema_name: str | None = None
    data: Any = None  # the structured input, for the deterministic ``rules`` provider
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed reply. The last chunk a provider yields carries ``usage``."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    response_model: str | None = None
    response_id: str | None = None


@dataclass
class LLMResponse:
    """A finished reply with accounting; ``json`` is set (and schema-valid) for structured calls."""

    text: str
    provider: str
    model: str
    deployment: str
    group: str
    task: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    json: Any = None
    finish_reason: str | None = None
    cached: bool = False
    cache_age_s: float | None = None
    attempts: int = 1
    fallbacks: list[str] = field(default_factory=list)
    conversation_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "json": self.json,
            "provider": self.provider,
            "model": self.model,
            "deployment": self.deployment,
            "group": self.group,
            "task": self.task,
            "usage": self.usage.as_dict(),
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_s * 1000, 3),
            "finish_reason": self.finish_reason,
            "cache": {
                "hit": self.cached,
                "age_s": None if self.cache_age_s is None else round(self.cache_age_s, 3),
            },
            "attempts": self.attempts,
            "fallbacks": self.fallbacks,
            "conversation_id": self.conversation_id,
        }


def estimate_tokens(text: str) -> int:
    """A cheap offline token estimate (~4 characters per token), used for the context filter."""
    return max(1, (len(text) + 3) // 4)


def messages_tokens(messages: tuple[Message, ...] | list[Message]) -> int:
    return sum(estimate_tokens(m.content) + 4 for m in messages)
