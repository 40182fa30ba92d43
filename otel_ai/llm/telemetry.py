"""Prometheus metrics and OpenTelemetry spans for LLM calls, named from :mod:`semconv`."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from otel_ai.llm import semconv as sc
from otel_ai.llm.types import Usage

_BASE = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]


class LLMMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.duration = Histogram(
            sc.prometheus_name(sc.METRIC_OPERATION_DURATION, "seconds"),
            "GenAI operation duration (gen_ai.client.operation.duration, semconv 1.41.0)",
            [*_BASE, "error_type"],
            buckets=sc.DURATION_BUCKETS,
            registry=reg,
        )
        self.tokens = Histogram(
            sc.prometheus_name(sc.METRIC_TOKEN_USAGE),
            "Tokens per operation (gen_ai.client.token.usage, semconv 1.41.0)",
            [*_BASE, "gen_ai_token_type"],
            buckets=sc.TOKEN_BUCKETS,
            registry=reg,
        )
        self.ttfc = Histogram(
            sc.prometheus_name(sc.METRIC_TIME_TO_FIRST_CHUNK, "seconds"),
            "Time to the first streamed chunk (gen_ai.client.operation.time_to_first_chunk)",
            _BASE,
            buckets=sc.DURATION_BUCKETS,
            registry=reg,
        )
        self.requests = Counter(
            "otel_ai_llm_requests",
            "LLM manager requests by task and outcome",
            ["task", "outcome"],
            registry=reg,
        )
        self.attempts = Counter(
            "otel_ai_llm_attempts",
            "Provider attempts by deployment and outcome",
            ["deployment", "outcome"],
            registry=reg,
        )
        self.cost = Counter(
            "otel_ai_llm_cost_usd",
            "Cost in USD from the bundled price table",
            ["provider", "model", "task"],
            registry=reg,
        )
        self.cache = Counter("otel_ai_llm_cache", "Response cache lookups", ["result"], registry=reg)
        self.redactions = Counter(
            "otel_ai_llm_redactions", "Secrets/PII replaced before external providers", registry=reg
        )
        self.breaker_open = Gauge(
            "otel_ai_llm_breaker_open",
            "1 while a deployment's circuit breaker is open",
            ["deployment"],
            registry=reg,
        )
        self.dropped = Counter(
            "otel_ai_llm_usage_records_dropped", "Usage records not persisted", ["reason"], registry=reg
        )

    def record_operation(
        self, provider: str, model: str, duration_s: float, usage: Usage | None, error: str | None
    ) -> None:
        base = (sc.OPERATION_CHAT, sc.PROVIDER_NAMES.get(provider, provider), model)
        self.duration.labels(*base, error or "").observe(duration_s)
        if usage is not None and error is None:
            self.tokens.labels(*base, sc.TOKEN_INPUT).observe(usage.input_tokens)
            self.tokens.labels(*base, sc.TOKEN_OUTPUT).observe(usage.output_tokens)


class LLMTracer:
    """One CLIENT span per provider attempt (INTERNAL for in-process models), per semconv."""

    def __init__(self, tracer_provider: Any = None) -> None:
        self.tracer = trace.get_tracer("otel_ai.llm", tracer_provider=tracer_provider)

    def start(
        self,
        provider_kind: str,
        model: str,
        *,
        stream: bool,
        server_address: str | None,
        max_tokens: int,
        temperature: float | None,
        json_output: bool,
        conversation_id: str | None,
    ) -> Any:
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_NAMES.get(provider_kind, provider_kind),
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.GEN_AI_REQUEST_MAX_TOKENS: max_tokens,
            sc.GEN_AI_OUTPUT_TYPE: sc.OUTPUT_JSON if json_output else sc.OUTPUT_TEXT,
        }
        if stream:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if temperature is not None:
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = temperature
        if conversation_id:
            attrs[sc.GEN_AI_CONVERSATION_ID] = conversation_id
        if server_address:
            from urllib.parse import urlsplit

            parts = urlsplit(server_address)
            if parts.hostname:
                attrs[sc.SERVER_ADDRESS] = parts.hostname
                if parts.port:
                    attrs[sc.SERVER_PORT] = parts.port
        kind = SpanKind.INTERNAL if provider_kind in ("embedded", "rules") else SpanKind.CLIENT
        return self.tracer.start_span(f"{sc.OPERATION_CHAT} {model}", kind=kind, attributes=attrs)

    @staticmethod
    def finish(
        span: Any,
        *,
        usage: Usage | None,
        response_model: str | None,
        response_id: str | None,
        finish_reason: str | None,
        ttfc_s: float | None,
        error: str | None,
    ) -> None:
        if usage is not None:
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
            span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
            if usage.cache_read_input_tokens:
                span.set_attribute(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_input_tokens)
            if usage.cache_creation_input_tokens:
                span.set_attribute(
                    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_creation_input_tokens
                )
        if response_model:
            span.set_attribute(sc.GEN_AI_RESPONSE_MODEL, response_model)
        if response_id:
            span.set_attribute(sc.GEN_AI_RESPONSE_ID, response_id)
        if finish_reason:
            span.set_attribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, [finish_reason])
        if ttfc_s is not None:
            span.set_attribute(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, ttfc_s)
        if error:
            span.set_attribute(sc.ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
