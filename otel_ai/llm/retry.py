"""The manager's one retry loop.

For each group of the task's chain it tries the best usable deployment; retryable errors (429,
5xx, timeouts) back off with jitter (``Retry-After`` is a floor) and may switch to another
deployment of the group; other errors exclude the deployment for this request; when a group is
exhausted the next group of the chain is tried. ``rules`` always ends the chain, so insight
schemas always get a valid answer. A cached answer is served before any of it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from otel_ai.llm.accounting import CallRecord
from otel_ai.llm.attempt import AttemptResult, DeploymentCall
from otel_ai.llm.cache import ResponseCache
from otel_ai.llm.config import LLMConfig
from otel_ai.llm.errors import AllProvidersFailed, InvalidRequest, LLMError, Timeout
from otel_ai.llm.prompting import Prepared
from otel_ai.llm.router import Deployment, Router, backoff_delay
from otel_ai.llm.telemetry import LLMMetrics
from otel_ai.llm.types import Chunk, GenerateRequest, LLMResponse, Usage, messages_tokens


@dataclass
class RetryLoop:
    """``async for item in loop.run(prep, stream=...)``: chunks (when streaming), then the response."""

    config: LLMConfig
    router: Router
    cache: ResponseCache
    metrics: LLMMetrics
    attempt: DeploymentCall
    account: Callable[[CallRecord], None]
    persist_turn: Callable[[Prepared, LLMResponse], Awaitable[None]]
    sleep: Callable[[float], Awaitable[Any]]

    async def run(self, prep: Prepared, *, stream: bool) -> AsyncIterator[Chunk | LLMResponse]:
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
                self.account(
                    CallRecord(
                        req.task,
                        resp.provider,
                        resp.model,
                        resp.deployment,
                        latency_s=resp.latency_s,
                        cached=True,
                    )
                )
                await self.persist_turn(prep, resp)
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
                outcome = AttemptResult()
                until = deadline if dep.kind != "rules" else max(deadline, now + 1.0)
                try:
                    async for chunk in self.attempt(dep, prep, stream, until, forward, outcome):
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
                    await self.sleep(delay)
                    continue
                resp = self._response(dep, prep, outcome, t0, attempts, passed)
                if prep.key is not None and not passed:  # a degraded (fallback) answer is not cached
                    size = len(resp.text.encode()) + 256
                    self.cache.put(prep.key, replace(resp, conversation_id=None), size)
                await self.persist_turn(prep, resp)
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
        self, dep: Deployment, prep: Prepared, out: AttemptResult, t0: float, attempts: int, passed: list[str]
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
