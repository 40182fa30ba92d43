"""``/api/v1/llm``: generate (JSON or SSE), models, health, usage, conversations.

Bad parameters answer 400 with a message; an exhausted fallback chain answers 503 (both through
the error table of :mod:`otel_ai.api.errors`). Streams are
``text/event-stream`` with ``chunk`` events, then one ``done`` event carrying the full response
(usage, cost, cache metadata) or an ``error`` event; a client disconnect cancels the provider call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Unpack

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from otel_ai.api.errors import error_body, error_kind
from otel_ai.api.schemas import (
    Conversation,
    ConversationList,
    Deleted,
    LLMAnswer,
    LLMHealth,
    LLMModels,
    LLMUsageReport,
    doc,
)
from otel_ai.errors import NotFound, OtelAiError
from otel_ai.llm.manager import LLMManager
from otel_ai.llm.types import CallOptions, GenerateOptions, LLMResponse

router = APIRouter(tags=["llm"])


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str
    content: str


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    task: str | None = None
    model: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    schema_name: str | None = None
    data: Any = None
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    cache: bool = True

    def kwargs(self) -> CallOptions:
        return {
            "task": self.task,
            "model": self.model,
            "schema": self.json_schema,
            "schema_name": self.schema_name,
            "data": self.data,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "cache": self.cache,
        }


class GenerateBody(_Options):
    prompt: str | None = None
    messages: list[MessageIn] | None = None
    system: str | None = None
    conversation_id: str | None = None


class ConversationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str | None = None
    title: str = ""
    task: str = "general"
    model: str | None = None


class ContinueBody(_Options):
    content: str


def _manager(request: Request) -> LLMManager:
    llm = request.app.state.ctx.llm
    if llm is None:
        # 503: the component is not running on this instance (config), not a server bug
        raise OtelAiError("the LLM manager is disabled (llm.enabled: false)", retryable=True)
    return llm  # type: ignore[no-any-return]


def _sse(event: str, payload: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _events(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for item in items:
            if isinstance(item, LLMResponse):
                yield _sse("done", item.as_dict())
            else:
                yield _sse("chunk", {"text": item.text})
    except OtelAiError as exc:
        yield _sse("error", error_body(exc.message, error_kind(exc)))
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()  # propagates a client disconnect to the provider call


async def _answer(
    llm: LLMManager, prompt: str | None, stream: bool, **options: Unpack[GenerateOptions]
) -> Any:
    """JSON, or an SSE stream; a bad request (400) or an exhausted chain (503) raises here, before
    any byte is sent, and the error table answers it."""
    if stream:
        items = await llm.start_stream(prompt, **options)
        return StreamingResponse(
            _events(items),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    resp = await llm.generate(prompt, **options)
    return resp.as_dict()


@router.post(
    "/generate",
    summary="Generate text or schema-constrained JSON (SSE with stream: true)",
    response_model=None,
    responses=doc(LLMAnswer, "the answer (JSON), or text/event-stream events chunk / done / error"),
)
async def generate(body: GenerateBody, request: Request) -> Any:
    llm = _manager(request)
    messages = [m.model_dump() for m in body.messages] if body.messages else None
    return await _answer(
        llm,
        body.prompt,
        body.stream,
        messages=messages,
        system=body.system,
        conversation_id=body.conversation_id,
        **body.kwargs(),
    )


@router.get(
    "/models",
    summary="Model groups, deployments, capabilities, prices and task chains",
    response_model=None,
    responses=doc(LLMModels),
)
async def models(request: Request) -> dict[str, Any]:
    return _manager(request).models()


@router.get(
    "/health",
    summary="Per-deployment status, circuit-breaker state and last latency",
    response_model=None,
    responses=doc(LLMHealth),
)
async def health(
    request: Request, probe: bool = Query(False, description="make a 1-token call to every deployment first")
) -> dict[str, Any]:
    llm = _manager(request)
    return await llm.probe() if probe else llm.providers_status()


@router.get(
    "/usage",
    summary="Tokens, cost (USD) and latency totals by provider, model and task",
    response_model=None,
    responses=doc(LLMUsageReport),
)
async def usage(request: Request) -> dict[str, Any]:
    return await _manager(request).usage()


@router.post(
    "/conversations",
    status_code=201,
    summary="Create a conversation",
    response_model=None,
    responses={201: {"model": Conversation, "description": "created"}},
)
async def create_conversation(body: ConversationBody, request: Request) -> dict[str, Any]:
    conv = await _manager(request).create_conversation(
        system=body.system, title=body.title, task=body.task, model=body.model
    )
    return conv.as_dict()


@router.get(
    "/conversations",
    summary="List conversations, most recently updated first",
    response_model=None,
    responses=doc(ConversationList),
)
async def list_conversations(request: Request, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    convs = await _manager(request).list_conversations(limit)
    return {"conversations": [c.as_dict(with_messages=False) for c in convs]}


@router.get(
    "/conversations/{conv_id}",
    summary="A conversation with its messages",
    response_model=None,
    responses=doc(Conversation),
)
async def get_conversation(conv_id: str, request: Request) -> dict[str, Any]:
    conv = await _manager(request).get_conversation(conv_id)
    if conv is None:
        raise NotFound(f"conversation {conv_id} not found")
    return conv.as_dict()


@router.post(
    "/conversations/{conv_id}/messages",
    summary="Continue a conversation (JSON or SSE)",
    response_model=None,
    responses=doc(LLMAnswer),
)
async def continue_conversation(conv_id: str, body: ContinueBody, request: Request) -> Any:
    return await _answer(
        _manager(request), body.content, body.stream, conversation_id=conv_id, **body.kwargs()
    )


@router.delete(
    "/conversations/{conv_id}", summary="Delete a conversation", response_model=None, responses=doc(Deleted)
)
async def delete_conversation(conv_id: str, request: Request) -> dict[str, Any]:
    if not await _manager(request).delete_conversation(conv_id):
        raise NotFound(f"conversation {conv_id} not found")
    return {"deleted": True, "id": conv_id}
