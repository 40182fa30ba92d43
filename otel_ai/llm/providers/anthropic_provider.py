"""``anthropic`` provider: the Messages API through the official SDK (``max_retries=0``).

Structured output uses forced tool use (one tool whose ``input_schema`` is the schema). Streamed
usage: ``message_start`` carries input (and cache) tokens, ``message_delta.usage`` is cumulative
so the latest value wins, never a sum. Input tokens follow the GenAI semconv rule: input +
cache_read + cache_creation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx

from otel_ai.errors import LLMError
from otel_ai.llm.config import DeploymentConfig, LLMConfig
from otel_ai.llm.errors import (
    AuthFailed,
    BadResponse,
    ContextTooLarge,
    InvalidRequest,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from otel_ai.llm.providers.base import Provider, retry_after_from_headers
from otel_ai.llm.types import Chunk, ProviderCall, Usage

_CONTEXT_HINTS = ("prompt is too long", "context window", "too many tokens", "maximum context")


def translate_anthropic_error(exc: BaseException) -> LLMError:
    """The one place where anthropic SDK exceptions become otel-ai errors."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError | httpx.TimeoutException):
        return Timeout(f"provider timed out: {type(exc).__name__}")
    if isinstance(exc, anthropic.APIConnectionError | httpx.TransportError):
        return ProviderUnavailable(f"cannot connect: {exc}")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        retry_after = retry_after_from_headers(exc.response.headers if exc.response is not None else None)
        text = str(exc.message)
        if status == 429:
            return RateLimited(f"rate limited (429): {text}", retry_after=retry_after)
        if status == 529 or "overloaded" in text.lower():
            return ProviderUnavailable(f"provider overloaded ({status}): {text}", retry_after=retry_after)
        if status in (401, 403):
            return AuthFailed(f"authentication failed ({status})")
        if status in (400, 413) and any(h in text.lower() for h in _CONTEXT_HINTS):
            return ContextTooLarge(f"context too large ({status}): {text}")
        if status == 408:
            return Timeout(f"provider timed out (408): {text}")
        if status >= 500:
            return ProviderUnavailable(f"provider error ({status}): {text}", retry_after=retry_after)
        return InvalidRequest(f"provider rejected the request ({status}): {text}")
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        return BadResponse(f"malformed provider response: {exc}")
    if isinstance(exc, anthropic.APIError):  # e.g. an `error` event in the middle of a stream
        msg = str(exc)
        if "overloaded" in msg.lower():
            return ProviderUnavailable(f"provider overloaded: {msg}")
        return ProviderUnavailable(f"provider error: {msg}")
    return BadResponse(f"unexpected provider failure: {type(exc).__name__}: {exc}")


def _usage(raw: Any, prev: Usage | None = None) -> Usage:
    """Merge an Anthropic usage object into the running (cumulative) usage."""
    prev = prev or Usage()

    def val(name: str, default: int) -> int:
        v = getattr(raw, name, None)
        return default if v is None else int(v)

    base_in = val("input_tokens", -1)
    cache_read = val("cache_read_input_tokens", prev.cache_read_input_tokens)
    cache_create = val("cache_creation_input_tokens", prev.cache_creation_input_tokens)
    total_in = prev.input_tokens if base_in < 0 else base_in + cache_read + cache_create
    return Usage(
        input_tokens=total_in,
        output_tokens=val("output_tokens", prev.output_tokens),
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_create,
    )


class AnthropicProvider(Provider):
    kind = "anthropic"
    default_context_window = 200_000

    def __init__(self, deployment: DeploymentConfig, config: LLMConfig) -> None:
        super().__init__(deployment, config)
        timeout = deployment.timeout_s or config.timeouts.call_s
        self._client = anthropic.AsyncAnthropic(
            api_key=deployment.resolved_key() or "not-set",
            base_url=deployment.base_url,
            max_retries=0,
            timeout=timeout,
        )
        self._tool = "emit_result"

    @property
    def server_address(self) -> str | None:
        return str(self._client.base_url)

    def _params(self, call: ProviderCall) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in call.messages if m.role == "system")
        params: dict[str, Any] = {
            "model": call.model,
            "max_tokens": call.max_tokens,
            "messages": [m.as_dict() for m in call.messages if m.role != "system"],
            "timeout": call.timeout_s,
        }
        if system:
            params["system"] = system
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.schema is not None:
            params["tools"] = [
                {
                    "name": self._tool,
                    "description": "Return the result in this exact shape.",
                    "input_schema": call.schema,
                }
            ]
            params["tool_choice"] = {"type": "tool", "name": self._tool}
        return params

    async def execute(self, call: ProviderCall, *, stream: bool) -> AsyncGenerator[Chunk, None]:
        if not stream:
            try:
                msg = await self._client.messages.create(**self._params(call))
            except Exception as exc:
                raise translate_anthropic_error(exc) from exc
            parts: list[str] = []
            for block in msg.content or []:
                if block.type == "text":
                    parts.append(block.text)
                elif block.type == "tool_use":
                    parts.append(json.dumps(block.input))
            yield Chunk(
                text="".join(parts),
                usage=_usage(msg.usage),
                finish_reason=msg.stop_reason,
                response_model=msg.model,
                response_id=msg.id,
            )
            return
        try:
            events = await self._client.messages.create(**self._params(call), stream=True)
        except Exception as exc:
            raise translate_anthropic_error(exc) from exc
        usage: Usage | None = None
        finish = model = rid = None
        try:
            async for ev in events:
                if ev.type == "message_start":
                    usage = _usage(ev.message.usage)
                    model, rid = ev.message.model, ev.message.id
                elif ev.type == "content_block_delta":
                    delta = ev.delta
                    text = (
                        getattr(delta, "text", None)
                        if delta.type == "text_delta"
                        else getattr(delta, "partial_json", None)
                        if delta.type == "input_json_delta"
                        else None
                    )
                    if text:
                        yield Chunk(text=text)
                elif ev.type == "message_delta":
                    usage = _usage(ev.usage, usage)  # cumulative: replace, never add
                    finish = ev.delta.stop_reason or finish
        except LLMError:
            raise
        except Exception as exc:
            raise translate_anthropic_error(exc) from exc
        finally:
            await events.close()
        yield Chunk(usage=usage, finish_reason=finish, response_model=model, response_id=rid)

    async def aclose(self) -> None:
        await self._client.close()
