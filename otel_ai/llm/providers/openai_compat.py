"""``openai`` (official SDK) and ``local`` (any OpenAI-compatible server: LM Studio, Ollama,
llama.cpp server, vLLM) providers. SDK retries are off (``max_retries=0``): the router retries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx
import openai

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
from otel_ai.llm.structured import ThinkFilter, strip_think
from otel_ai.llm.types import Chunk, ProviderCall, Usage

_CONTEXT_HINTS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "too many tokens",
    "prompt is too long",
)


def translate_openai_error(exc: BaseException) -> LLMError:
    """The one place where openai SDK exceptions become otel-ai errors."""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return Timeout(f"provider timed out: {type(exc).__name__}")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return ProviderUnavailable(f"cannot connect: {exc}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = exc.response.headers if exc.response is not None else None
        retry_after = retry_after_from_headers(headers)
        text = str(exc.message)
        if status == 429:
            return RateLimited(f"rate limited (429): {text}", retry_after=retry_after)
        if status in (401, 403):
            return AuthFailed(f"authentication failed ({status})")
        if status in (400, 413, 422) and any(h in text.lower() for h in _CONTEXT_HINTS):
            return ContextTooLarge(f"context too large ({status}): {text}")
        if status == 408:
            return Timeout(f"provider timed out (408): {text}")
        if status >= 500:
            return ProviderUnavailable(f"provider error ({status}): {text}", retry_after=retry_after)
        return InvalidRequest(f"provider rejected the request ({status}): {text}")
    if isinstance(exc, openai.APIResponseValidationError | ValueError | json.JSONDecodeError):
        return BadResponse(f"malformed provider response: {exc}")
    if isinstance(exc, openai.APIError):
        return ProviderUnavailable(f"provider error: {exc}")
    return BadResponse(f"unexpected provider failure: {type(exc).__name__}: {exc}")


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    details = getattr(raw, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    return Usage(
        input_tokens=int(raw.prompt_tokens or 0),
        output_tokens=int(raw.completion_tokens or 0),
        cache_read_input_tokens=cached,
    )


class OpenAIProvider(Provider):
    """OpenAI Chat Completions through the official SDK."""

    kind = "openai"
    default_context_window = 128_000
    max_tokens_param = "max_completion_tokens"

    def __init__(self, deployment: DeploymentConfig, config: LLMConfig) -> None:
        super().__init__(deployment, config)
        timeout = deployment.timeout_s or config.timeouts.call_s
        self._client = openai.AsyncOpenAI(
            api_key=deployment.resolved_key() or "not-needed",
            base_url=deployment.base_url,
            max_retries=0,  # the router is the only retry loop
            timeout=timeout,
        )

    @property
    def server_address(self) -> str | None:
        return str(self._client.base_url)

    def _params(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": call.model,
            "messages": [m.as_dict() for m in call.messages],
            self.max_tokens_param: call.max_tokens,
            "timeout": call.timeout_s,
        }
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.schema is not None and self.deployment.supports_json_schema:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": (call.schema_name or "reply").replace("-", "_")[:64],
                    "schema": call.schema,
                    "strict": False,
                },
            }
        if stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        return params

    async def execute(self, call: ProviderCall, *, stream: bool) -> AsyncGenerator[Chunk, None]:
        if not stream:
            try:
                resp = await self._client.chat.completions.create(**self._params(call, False))
            except Exception as exc:
                raise translate_openai_error(exc) from exc
            if not getattr(resp, "choices", None):
                raise BadResponse("provider returned no choices")
            msg = resp.choices[0].message
            if getattr(msg, "refusal", None):
                raise BadResponse(f"model refused: {msg.refusal}")
            yield Chunk(
                text=self._clean(msg.content or ""),
                usage=_usage(resp.usage),
                finish_reason=resp.choices[0].finish_reason,
                response_model=resp.model,
                response_id=resp.id,
            )
            return
        try:
            events = await self._client.chat.completions.create(**self._params(call, True))
        except Exception as exc:
            raise translate_openai_error(exc) from exc
        usage: Usage | None = None
        finish: str | None = None
        model = rid = None
        clean = self._stream_filter()
        try:
            async for ev in events:
                model, rid = ev.model or model, ev.id or rid
                if getattr(ev, "usage", None):
                    usage = _usage(ev.usage)
                for choice in ev.choices or []:  # vLLM sends choices=null on the usage chunk
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    text = clean(choice.delta.content or "") if choice.delta is not None else ""
                    if text:
                        yield Chunk(text=text)
        except LLMError:
            raise
        except Exception as exc:
            raise translate_openai_error(exc) from exc
        finally:
            await events.close()  # cancellation closes the HTTP stream
        yield Chunk(usage=usage, finish_reason=finish, response_model=model, response_id=rid)

    def _clean(self, text: str) -> str:
        return text

    def _stream_filter(self) -> Callable[[str], str]:
        return lambda text: text

    async def aclose(self) -> None:
        await self._client.close()


class LocalProvider(OpenAIProvider):
    """Any OpenAI-compatible server. Tolerates ``<think>`` blocks; fenced JSON is handled by the
    structured-output parser; ``supports_json_schema: false`` servers get the schema in the prompt.
    Sends ``response_format`` only as ``json_schema`` (LM Studio rejects ``json_object``)."""

    kind = "local"
    default_context_window = 8192
    max_tokens_param = "max_tokens"

    def _clean(self, text: str) -> str:
        return strip_think(text)

    def _stream_filter(self) -> Callable[[str], str]:
        return ThinkFilter().feed
