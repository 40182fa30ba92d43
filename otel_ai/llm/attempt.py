"""One attempt: a call to one deployment (plus at most one schema-repair call), with its span,
metrics, breaker and health bookkeeping and its usage record. The retry loop
(:mod:`otel_ai.llm.retry`) decides which deployment to try next.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from otel_ai.llm import semconv as sc
from otel_ai.llm.accounting import CallRecord
from otel_ai.llm.config import LLMConfig
from otel_ai.llm.errors import BadResponse, LLMError, SchemaMismatch, counts_for_breaker, error_type
from otel_ai.llm.prompting import Prepared, collect, provider_messages
from otel_ai.llm.router import Deployment
from otel_ai.llm.structured import parse_structured, schema_instruction
from otel_ai.llm.telemetry import LLMMetrics, LLMTracer
from otel_ai.llm.types import Chunk, Message, ProviderCall, Usage, estimate_tokens, messages_tokens


@dataclass
class AttemptResult:
    """What an attempt produced, filled in as it goes (the reply, parsed JSON, usage)."""

    text: str = ""
    value: Any = None
    usage: Usage | None = None
    finish: str | None = None
    model: str | None = None


class DeploymentCall:
    """Used as ``async for chunk in call(dep, prep, stream, deadline, forward, out)``; raises the
    attempt's :class:`LLMError` after its bookkeeping."""

    def __init__(
        self,
        config: LLMConfig,
        metrics: LLMMetrics,
        tracer: LLMTracer,
        account: Callable[[CallRecord], None],
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.tracer = tracer
        self.account = account

    async def __call__(
        self,
        dep: Deployment,
        prep: Prepared,
        stream: bool,
        deadline: float,
        forward: bool,
        out: AttemptResult,
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
        self.account(
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
