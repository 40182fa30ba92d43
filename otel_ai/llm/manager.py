"""The LLM manager: one API for text and schema-constrained JSON over every provider, with
routing, retries, breakers, deadlines, caching, conversations, streaming and accounting.

The manager is the only retry loop. For each group of the task's chain it tries the best usable
deployment; retryable errors (429, 5xx, timeouts) back off with jitter (``Retry-After`` is a
floor) and may switch to another deployment of the group; other errors exclude the deployment
for this request; when a group is exhausted the next group of the chain is tried. ``rules``
always ends the chain, so insight schemas always get a valid answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry

from otel_ai.errors import LLMError
from otel_ai.llm import semconv as sc
from otel_ai.llm.accounting import CallRecord, MemoryUsageStore, UsageStore, summarize
from otel_ai.llm.cache import ResponseCache, cache_key
from otel_ai.llm.config import TASK_TYPES, LLMConfig
from otel_ai.llm.conversations import Conversation, ConversationStore, MemoryConversationStore
from otel_ai.llm.errors import (
    AllProvidersFailed,
    BadResponse,
    InvalidRequest,
    SchemaMismatch,
    Timeout,
    counts_for_breaker,
    error_type,
)
from otel_ai.llm.prompting import DEFAULT_SYSTEM, Prepared, build_messages, collect, provider_messages
from otel_ai.llm.router import Deployment, Router, backoff_delay, build_deployments
from otel_ai.llm.schemas import get_schema
from otel_ai.llm.structured import check_schema, parse_structured, schema_instruction
from otel_ai.llm.telemetry import LLMMetrics, LLMTracer
from otel_ai.llm.types import (
    Chunk,
    GenerateRequest,
    LLMResponse,
    Message,
    ProviderCall,
    Usage,
    estimate_tokens,
    messages_tokens,
)

log = logging.getLogger(__name__)

MAX_PENDING_RECORDS = 1000


@dataclass
class _Outcome:
    text: str = ""
    value: Any = None
    usage: Usage | None = None
    finish: str | None = None
    model: str | None = None


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
        self._sleep = sleep
        self._pending: set[asyncio.Future[Any]] = set()
        self._closed = False

    # -- public API -------------------------------------------------------------------------
    async def generate(self, prompt: str | None = None, **kwargs: Any) -> LLMResponse:
        """Text (or, with ``schema``/``schema_name``, validated JSON in ``response.json``)."""
        prep = await self._prepare(prompt, **kwargs)
        result: LLMResponse | None = None
        async for item in self._run(prep, stream=False):
            if isinstance(item, LLMResponse):
                result = item
        assert result is not None
        return result

    async def stream(
        self, prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[Chunk | LLMResponse, None]:
        """Yield text :class:`Chunk`s as they arrive, then the final :class:`LLMResponse`.

        Structured (schema) streams deliver the validated JSON text as one chunk at the end.
        Closing the iterator early cancels the provider call.
        """
        async for item in await self.start_stream(prompt, **kwargs):
            yield item

    async def start_stream(
        self, prompt: str | None = None, **kwargs: Any
    ) -> AsyncIterator[Chunk | LLMResponse]:
        """Validate the request now (errors raise here), then return the chunk iterator."""
        prep = await self._prepare(prompt, **kwargs)
        return self._run(prep, stream=True)

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
                    dep, prep, False, time.monotonic() + self.config.timeouts.call_s, False, _Outcome()
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

    async def continue_conversation(self, conv_id: str, content: str, **kwargs: Any) -> LLMResponse:
        return await self.generate(content, conversation_id=conv_id, **kwargs)

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
                from otel_ai.errors import NotFound

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

    # -- the retry loop -----------------------------------------------------------------------
    async def _run(self, prep: Prepared, *, stream: bool) -> AsyncIterator[Chunk | LLMResponse]:
        req = prep.request
        t0 = time.monotonic()
        if prep.key is not None:
            hit = self.cache.get(prep.key)
            self.metrics.cache.labels("hit" if hit else "miss").inc()
            if hit is not None:
                cached, age = hit
                resp = replace(
                    cached,
                    cached=True,
                    cache_age_s=age,
                    cost_usd=0.0,
                    latency_s=time.monotonic() - t0,
                    attempts=0,
                    fallbacks=[],
                    conversation_id=req.conversation_id,
                )
                if stream:
                    yield Chunk(text=resp.text)
                self._account(
                    CallRecord(
                        req.task,
                        resp.provider,
                        resp.model,
                        resp.deployment,
                        latency_s=resp.latency_s,
                        cached=True,
                    )
                )
                await self._persist_turn(prep, resp)
                self.metrics.requests.labels(req.task, "cache_hit").inc()
                yield resp
                return
        deadline = t0 + self.config.timeouts.total_s
        errors: list[tuple[str, LLMError]] = []
        skipped_all: list[str] = []
        passed: list[str] = []
        attempts = 0
        forward = stream and prep.schema is None
        emitted = False
        tokens_in = (
            messages_tokens(prep.messages)
            if prep.conversation is None
            else messages_tokens(prep.messages[:1] + prep.messages[-1:])
        )
        for entry in prep.chain:
            exclude: set[str] = set()
            tries = 0
            while tries < self.config.retry.max_attempts:
                ordered, skipped = self.router.order(entry, tokens_in, prep.max_tokens, exclude)
                skipped_all.extend(skipped)
                if not ordered:
                    break
                dep = ordered[0]
                if not dep.breaker.allow():
                    exclude.add(dep.name)
                    continue
                now = time.monotonic()
                if now >= deadline and dep.kind != "rules":  # rules is instant: it still answers
                    dep.breaker.release_probe()
                    errors.append(
                        (dep.name, Timeout(f"total deadline of {self.config.timeouts.total_s}s passed"))
                    )
                    break
                tries += 1
                attempts += 1
                outcome = _Outcome()
                until = deadline if dep.kind != "rules" else max(deadline, now + 1.0)
                try:
                    async for chunk in self._attempt(dep, prep, stream, until, forward, outcome):
                        emitted = True
                        yield chunk
                except LLMError as exc:
                    errors.append((dep.name, exc))
                    if emitted:  # a stream already reached the caller: no silent switch
                        self.metrics.requests.labels(req.task, "error").inc()
                        raise
                    if not exc.retryable:
                        exclude.add(dep.name)
                        continue
                    retry_after = getattr(exc, "retry_after", None)
                    if (
                        tries >= self.config.retry.max_attempts
                        or (retry_after or 0) > self.config.retry.max_retry_after_s
                    ):
                        break
                    others = [d for d in ordered[1:] if d.name not in exclude]
                    if others:  # another deployment of the group can take it now
                        exclude.add(dep.name)
                        continue
                    delay = backoff_delay(tries - 1, self.config.retry, retry_after)
                    if time.monotonic() + delay >= deadline:
                        break
                    await self._sleep(delay)
                    continue
                resp = self._response(dep, prep, outcome, t0, attempts, passed)
                if prep.key is not None and not passed:  # a degraded (fallback) answer is not cached
                    size = len(resp.text.encode()) + 256
                    self.cache.put(prep.key, replace(resp, conversation_id=None), size)
                await self._persist_turn(prep, resp)
                self.metrics.requests.labels(req.task, "ok" if not passed else "fallback").inc()
                yield resp
                return
            passed.append(entry)
        self.metrics.requests.labels(req.task, "error").inc()
        raise self._all_failed(req, errors, skipped_all)

    def _all_failed(
        self, req: GenerateRequest, errors: list[tuple[str, LLMError]], skipped: list[str]
    ) -> LLMError:
        if len(errors) == 1 and not skipped and isinstance(errors[0][1], InvalidRequest) and req.model:
            return errors[0][1]
        detail = "; ".join(f"{name}: {type(e).__name__}: {e.message}" for name, e in errors[-6:])
        if skipped:
            detail += ("; " if detail else "") + "; ".join(dict.fromkeys(skipped))
        return AllProvidersFailed(
            f"all providers failed for task {req.task!r}: {detail or 'no usable deployment'}", errors
        )

    def _response(
        self, dep: Deployment, prep: Prepared, out: _Outcome, t0: float, attempts: int, passed: list[str]
    ) -> LLMResponse:
        usage = out.usage or Usage()
        return LLMResponse(
            text=out.text,
            json=out.value,
            provider=dep.kind,
            model=out.model or dep.model,
            deployment=dep.name,
            group=dep.group,
            task=prep.request.task,
            usage=usage,
            cost_usd=round(dep.price.cost(usage), 10),
            latency_s=time.monotonic() - t0,
            finish_reason=out.finish,
            attempts=attempts,
            fallbacks=list(passed),
            conversation_id=prep.request.conversation_id,
        )

    async def _attempt(
        self, dep: Deployment, prep: Prepared, stream: bool, deadline: float, forward: bool, out: _Outcome
    ) -> AsyncIterator[Chunk]:
        """One deployment call (plus at most one schema-repair call); records health and usage."""
        req = prep.request
        msgs, replaced = provider_messages(dep, prep)
        if replaced:
            self.metrics.redactions.inc(replaced)
        timeout = dep.provider.deployment.timeout_s or self.config.timeouts.call_s
        call = ProviderCall(
            msgs,
            dep.model,
            min(prep.max_tokens, dep.max_output_tokens),
            req.temperature,
            prep.schema,
            req.schema_name,
            req.data,
            timeout,
        )
        span = self.tracer.start(
            dep.kind,
            dep.model,
            stream=stream,
            server_address=dep.provider.server_address,
            max_tokens=call.max_tokens,
            temperature=req.temperature,
            json_output=prep.schema is not None,
            conversation_id=req.conversation_id,
        )
        t0 = time.monotonic()
        ttfc: list[float] = []
        usage_total = Usage()
        err: LLMError | None = None
        try:
            text, usage, finish, model = "", None, None, None
            async for piece in collect(dep, call, stream, deadline, ttfc):
                if isinstance(piece, Chunk):
                    if forward:
                        yield piece
                    continue
                text, usage, finish, model = piece
            usage_total = usage or Usage(messages_tokens(msgs), estimate_tokens(text), estimated=True)
            out.text, out.finish, out.model = text, finish, model
            if prep.schema is not None:
                try:
                    out.value = parse_structured(text, prep.schema)
                except BadResponse as bad:  # one repair retry with the validation error
                    if finish == "length":  # cut by max_tokens: a repair under the same limit cannot fit
                        raise SchemaMismatch(
                            f"{dep.name}: reply truncated at max_tokens={call.max_tokens}: {bad.message}"
                        ) from bad
                    repair = replace(
                        call,
                        messages=(
                            *msgs,
                            Message("assistant", text[:4000]),
                            Message(
                                "user",
                                f"That reply was invalid: {bad.message}. {schema_instruction(prep.schema)}",
                            ),
                        ),
                    )
                    async for piece in collect(dep, repair, False, deadline, []):
                        if not isinstance(piece, Chunk):
                            text, usage, finish, model = piece
                    u2 = usage or Usage(
                        messages_tokens(repair.messages), estimate_tokens(text), estimated=True
                    )
                    usage_total = Usage(
                        usage_total.input_tokens + u2.input_tokens,
                        usage_total.output_tokens + u2.output_tokens,
                        usage_total.cache_read_input_tokens + u2.cache_read_input_tokens,
                        usage_total.cache_creation_input_tokens + u2.cache_creation_input_tokens,
                        usage_total.estimated or u2.estimated,
                    )
                    out.text, out.finish, out.model = text, finish, model
                    try:
                        out.value = parse_structured(text, prep.schema)
                    except BadResponse as bad2:
                        raise SchemaMismatch(f"{dep.name}: {bad2.message} (after one repair retry)") from bad2
                out.text = json.dumps(out.value, ensure_ascii=False)
                if stream:
                    yield Chunk(text=out.text)
            out.usage = usage_total
        except asyncio.CancelledError:
            dep.breaker.release_probe()
            span.end()
            raise
        except LLMError as exc:
            err = exc
        except Exception as exc:  # a provider bug must not crash the caller
            err = BadResponse(f"{dep.name}: unexpected failure: {type(exc).__name__}: {exc}")
        latency = time.monotonic() - t0
        etype = error_type(err) if err else None
        if err is None or counts_for_breaker(err):
            dep.breaker.record(err is None)
            self.metrics.breaker_open.labels(dep.name).set(1 if dep.breaker.state == "open" else 0)
        else:
            dep.breaker.release_probe()
        dep.observe(err is None, latency, None if err is None else f"{etype}: {err.message}"[:300])
        self.metrics.attempts.labels(dep.name, "ok" if err is None else etype or "error").inc()
        self.metrics.record_operation(
            dep.kind, dep.model, latency, usage_total if err is None else None, etype
        )
        if ttfc:
            self.metrics.ttfc.labels(
                sc.OPERATION_CHAT, sc.PROVIDER_NAMES.get(dep.kind, dep.kind), dep.model
            ).observe(ttfc[0])
        self.tracer.finish(
            span,
            usage=usage_total if err is None else None,
            response_model=out.model,
            response_id=None,
            finish_reason=out.finish,
            ttfc_s=ttfc[0] if ttfc else None,
            error=etype,
        )
        cost = dep.price.cost(usage_total) if err is None else 0.0
        if err is None:
            self.metrics.cost.labels(dep.kind, dep.model, req.task).inc(cost)
        self._account(
            CallRecord(
                req.task,
                dep.kind,
                dep.model,
                dep.name,
                usage_total.input_tokens if err is None else 0,
                usage_total.output_tokens if err is None else 0,
                cost,
                latency,
                err is None,
                False,
                etype or "",
            )
        )
        if err is not None:
            raise err

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
