"""The LLM manager: one API for text and schema-constrained JSON over every provider, with
routing, retries, breakers, deadlines, caching, conversations, streaming and accounting.

This module prepares requests (validation, messages, cache key) and keeps the books; the one
retry loop is :mod:`otel_ai.llm.retry` and one deployment call is :mod:`otel_ai.llm.attempt`.
The keywords every entry point takes are :class:`~otel_ai.llm.types.GenerateOptions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Unpack

from prometheus_client import CollectorRegistry

from otel_ai.errors import LLMError, NotFound
from otel_ai.llm.accounting import CallRecord, MemoryUsageStore, UsageStore, summarize
from otel_ai.llm.attempt import AttemptResult, DeploymentCall
from otel_ai.llm.cache import ResponseCache, cache_key
from otel_ai.llm.config import TASK_TYPES, LLMConfig
from otel_ai.llm.conversations import Conversation, ConversationStore, MemoryConversationStore
from otel_ai.llm.errors import (
    InvalidRequest,
)
from otel_ai.llm.prompting import DEFAULT_SYSTEM, Prepared, build_messages
from otel_ai.llm.retry import RetryLoop
from otel_ai.llm.router import Deployment, Router, build_deployments
from otel_ai.llm.schemas import get_schema
from otel_ai.llm.structured import check_schema
from otel_ai.llm.telemetry import LLMMetrics, LLMTracer
from otel_ai.llm.types import (
    CallOptions,
    Chunk,
    GenerateOptions,
    GenerateRequest,
    LLMResponse,
    Message,
)

log = logging.getLogger(__name__)

MAX_PENDING_RECORDS = 1000


class LLMManager:
    """Use :meth:`generate` / :meth:`stream`; conversations via ``*_conversation`` methods."""

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        conversations: ConversationStore | None = None,
        usage_store: UsageStore | None = None,
        registry: CollectorRegistry | None = None,
        tracer_provider: Any = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.config = config or LLMConfig()
        self.deployments: list[Deployment] = build_deployments(self.config)
        self.router = Router(self.config, self.deployments)
        self.cache = ResponseCache(self.config.cache)
        self.metrics = LLMMetrics(registry)
        self.tracer = LLMTracer(tracer_provider)
        self.conversations: ConversationStore = conversations or MemoryConversationStore()
        self.usage_store: UsageStore = usage_store or MemoryUsageStore()
        self._pending: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._attempt = DeploymentCall(self.config, self.metrics, self.tracer, self._account)
        self._loop = RetryLoop(
            self.config, self.router, self.cache, self.metrics, self._attempt, self._account,
            self._persist_turn, sleep,
        )  # fmt: skip

    # -- public API -------------------------------------------------------------------------
    async def generate(self, prompt: str | None = None, **options: Unpack[GenerateOptions]) -> LLMResponse:
        """Text (or, with ``schema``/``schema_name``, validated JSON in ``response.json``)."""
        prep = await self._prepare(prompt, **options)
        result: LLMResponse | None = None
        async for item in self._loop.run(prep, stream=False):
            if isinstance(item, LLMResponse):
                result = item
        assert result is not None
        return result

    async def stream(
        self, prompt: str | None = None, **options: Unpack[GenerateOptions]
    ) -> AsyncGenerator[Chunk | LLMResponse, None]:
        """Yield text :class:`Chunk`s as they arrive, then the final :class:`LLMResponse`.

        Structured (schema) streams deliver the validated JSON text as one chunk at the end.
        Closing the iterator early cancels the provider call.
        """
        async for item in await self.start_stream(prompt, **options):
            yield item

    async def start_stream(
        self, prompt: str | None = None, **options: Unpack[GenerateOptions]
    ) -> AsyncIterator[Chunk | LLMResponse]:
        """Validate the request now (errors raise here), then return the chunk iterator."""
        prep = await self._prepare(prompt, **options)
        return self._loop.run(prep, stream=True)

    def models(self) -> dict[str, Any]:
        return {
            "groups": {g: [d.name for d in deps] for g, deps in self.router.groups.items()},
            "tasks": {t: self.router.chain(t, None) for t in TASK_TYPES},
            "strategy": self.config.strategy,
            "deployments": [
                {
                    "name": d.name,
                    "group": d.group,
                    "provider": d.kind,
                    "model": d.model,
                    "context_window": d.context_window,
                    "max_output_tokens": d.max_output_tokens,
                    "input_cost_per_token": d.price.input_cost_per_token,
                    "output_cost_per_token": d.price.output_cost_per_token,
                    "priced": d.price.known,
                    "capabilities": {
                        "streaming": d.provider.can_stream,
                        "json_schema": d.provider.supports_json_schema,
                    },
                    "external": d.provider.external,
                    "redacted": d.redact,
                }
                for d in self.deployments
            ],
        }

    def providers_status(self) -> dict[str, Any]:
        deps = [d.status() for d in self.deployments]
        for d in self.deployments:
            self.metrics.breaker_open.labels(d.name).set(1 if d.breaker.state == "open" else 0)
        healthy = any(s["status"] != "down" for s in deps)
        return {
            "status": "ok" if healthy else "down",
            "deployments": deps,
            "cache": {"entries": len(self.cache), **self.cache.stats},
        }

    async def probe(self) -> dict[str, Any]:
        """Active health check: a 1-token call to every deployment whose breaker allows it,
        concurrently, each bounded by ``timeouts.call_s``. Results feed the breakers and latency
        like real traffic (and are accounted under task ``general``). Returns :meth:`providers_status`."""

        async def one(dep: Deployment) -> None:
            prep = await self._prepare("ping", model=dep.name, max_tokens=1, cache=False)
            if not dep.breaker.allow():
                return
            with contextlib.suppress(LLMError):
                async for _ in self._attempt(
                    dep, prep, False, time.monotonic() + self.config.timeouts.call_s, False, AttemptResult()
                ):
                    pass

        await asyncio.gather(*(one(d) for d in self.deployments))
        return self.providers_status()

    async def usage(self) -> dict[str, Any]:
        await self.flush()
        rows = await asyncio.to_thread(self.usage_store.rows)
        return summarize(rows)

    async def flush(self) -> None:
        """Wait for pending usage/conversation writes."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout=5)
        for d in self.deployments:
            with contextlib.suppress(Exception):
                await d.provider.aclose()

    # -- conversations ------------------------------------------------------------------------
    async def create_conversation(
        self, *, system: str | None = None, title: str = "", task: str = "general", model: str | None = None
    ) -> Conversation:
        self._check_task(task)
        if model:
            self.router.chain(task, model)
        now = time.time()
        conv = Conversation(
            id=uuid.uuid4().hex,
            created_at=now,
            updated_at=now,
            title=title,
            system=system or DEFAULT_SYSTEM,
            task=task,
            model=model,
        )
        await asyncio.to_thread(self.conversations.create, conv)
        return conv

    async def get_conversation(self, conv_id: str) -> Conversation | None:
        return await asyncio.to_thread(self.conversations.get, conv_id)

    async def list_conversations(self, limit: int = 100) -> list[Conversation]:
        return await asyncio.to_thread(self.conversations.list, limit)

    async def delete_conversation(self, conv_id: str) -> bool:
        return await asyncio.to_thread(self.conversations.delete, conv_id)

    async def continue_conversation(
        self, conv_id: str, content: str, **options: Unpack[CallOptions]
    ) -> LLMResponse:
        return await self.generate(content, conversation_id=conv_id, **options)

    # -- preparation --------------------------------------------------------------------------
    def _check_task(self, task: str) -> None:
        if task not in TASK_TYPES:
            raise InvalidRequest(f"task: unknown task {task!r}; known: {list(TASK_TYPES)}")

    async def _prepare(
        self,
        prompt: str | None = None,
        *,
        messages: list[dict[str, str]] | list[Message] | None = None,
        system: str | None = None,
        task: str | None = None,
        model: str | None = None,
        schema: dict[str, Any] | None = None,
        schema_name: str | None = None,
        data: Any = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        cache: bool = True,
        conversation_id: str | None = None,
    ) -> Prepared:
        conv = None
        if conversation_id:
            conv = await self.get_conversation(conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id} not found")
            task = task or conv.task
            model = model or conv.model
        task = task or "general"
        self._check_task(task)
        if schema is not None and schema_name is None:
            check_schema(schema)
        if schema_name is not None:
            schema = schema or get_schema(schema_name)
        if temperature is not None and not 0 <= temperature <= 2:
            raise InvalidRequest("temperature: must be between 0 and 2")
        if max_tokens is not None and max_tokens < 1:
            raise InvalidRequest("max_tokens: must be at least 1")
        msgs = build_messages(prompt, messages, system, data, conv)
        total_chars = sum(len(m.content) for m in msgs)
        if total_chars > self.config.max_prompt_chars:
            raise InvalidRequest(
                f"prompt: {total_chars} characters exceeds llm.max_prompt_chars={self.config.max_prompt_chars}"
            )
        req = GenerateRequest(
            messages=msgs,
            task=task,
            model=model,
            schema=schema,
            schema_name=schema_name,
            data=data,
            temperature=temperature,
            max_tokens=max_tokens,
            cache=cache,
            conversation_id=conversation_id,
        )
        chain = self.router.chain(task, model)
        limit = max_tokens or 1024
        key = None
        if cache and self.cache.enabled:
            params = {"temperature": temperature, "max_tokens": limit, "task": task}
            key = cache_key(
                "/".join(chain), [m.as_dict() for m in msgs], params, schema, self.config.prompt_version
            )
        new = [msgs[-1]] if conv is not None else []
        return Prepared(req, msgs, schema, limit, chain, key, conv, new)

    # -- bookkeeping --------------------------------------------------------------------------
    def _background(self, fn: Callable[..., Any], *args: Any) -> None:
        if len(self._pending) >= MAX_PENDING_RECORDS:
            self.metrics.dropped.labels("backlog").inc()
            return
        fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.metrics.dropped.labels("store_error").inc()
            log.warning("llm usage/conversation write failed: %s", fut.exception())

    def _account(self, rec: CallRecord) -> None:
        if isinstance(self.usage_store, MemoryUsageStore):
            self.usage_store.record([rec])  # cheap: no thread hop on the hot path
        else:
            self._background(self.usage_store.record, [rec])

    async def _persist_turn(self, prep: Prepared, resp: LLMResponse) -> None:
        conv = prep.conversation
        if conv is None:
            return
        turn = [*prep.new_messages, Message("assistant", resp.text)]
        await asyncio.to_thread(self.conversations.append, conv.id, time.time_ns() // 1000, turn)
