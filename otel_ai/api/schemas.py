"""Typed response shapes for the endpoints whose handlers build plain dicts (OpenAPI documentation).

The handlers keep returning their dicts; these models are attached with ``responses=`` (see
:func:`doc`), so the JSON on the wire does not change while ``/openapi.json``, ``/docs`` and
``/redoc`` show every field with its type. Each model allows extra keys: a room that adds a
field does not break the page, and ``tests/api/test_openapi.py`` checks live answers against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def doc(model: type[BaseModel], description: str = "OK") -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: document ``model`` as its 200 answer without filtering the JSON."""
    return {200: {"model": model, "description": description}}


class ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong; a bad parameter is named first ('since: ...')")
    type: str = Field(description="the kind of error, snake_case: invalid_parameter, not_found, ...")


# -- health --------------------------------------------------------------------------------------
class Health(Open):
    status: Literal["ok"]


class Readiness(Open):
    status: Literal["ready", "not ready"]
    storage: bool
    receivers: bool


# -- status --------------------------------------------------------------------------------------
class StorageStatus(Open):
    dsn: str = Field(description="the DSN without credentials")
    database: str
    embedded: bool


class ReceiverCounters(Open):
    requests: int
    items_received: int
    items_accepted: int
    items_refused: int = Field(
        description="refused for back-pressure (503 / UNAVAILABLE); the client retries"
    )
    items_rejected: int = Field(description="rejected as invalid (partial_success or 400)")
    outcomes: dict[str, int] = Field(description="requests by outcome (ok, refused, bad_request, ...)")


class ReceiversStatus(Open):
    ready: bool
    endpoints: dict[str, str] = Field(description="grpc / http listen addresses")
    max_body_bytes: int
    counters: dict[str, dict[str, dict[str, ReceiverCounters]]] = Field(
        description="signal (traces|metrics|logs) → transport (grpc|http) → encoding (protobuf|json)"
    )


class QueueStatus(Open):
    items: int
    capacity_items: int
    bytes: int
    capacity_bytes: int
    batches_waiting: int


class SpoolStatus(Open):
    dir: str
    bytes: int
    max_bytes: int
    segments: int
    pending_records: int
    pending_items: int
    torn_records_skipped: int


class WalStatus(Open):
    bytes: int
    pending_items: int
    appended_items: int


class PipelineStatus(Open):
    queue: QueueStatus
    batch: dict[str, int]
    ack: Literal["insert", "spool"]
    wal: WalStatus | None
    spool: SpoolStatus
    inserted_items: int = 0
    inserted_batches: int = 0
    spooled_items: int = 0
    replayed_items: int = 0
    failed_items: int = 0
    storage_down: bool
    last_error: str | None
    last_error_at: str | float | None


class MemoryStatus(Open):
    enabled: bool
    resident_bytes: int
    peak_resident_bytes: int
    soft_limit_bytes: int
    purge_above_bytes: int
    above_soft_limit: bool
    refusal_periods: int
    purges: int
    purged_bytes: int


class Job(Open):
    id: str
    next_run: str | None = Field(description="RFC 3339; null while paused")


class SchedulerStatus(Open):
    jobs: list[Job]


class Breaker(Open):
    state: Literal["closed", "half_open", "open"]


class DeploymentStatus(Open):
    name: str
    group: str
    provider: str
    model: str
    status: Literal["ok", "probing", "down"]
    breaker: Breaker
    last_latency_ms: float | None
    ewma_latency_ms: float | None
    last_error: str | None
    calls: int
    failures: int
    context_window: int | None
    redacted: bool


class LLMHealth(Open):
    status: Literal["ok", "down"]
    deployments: list[DeploymentStatus]
    cache: dict[str, Any]


class Status(Open):
    version: str
    role: Literal["all", "ingest", "analyzer"]
    storage: StorageStatus
    uptime_s: float
    receivers: ReceiversStatus | None = Field(default=None, description="absent on an analyzer-only instance")
    pipeline: PipelineStatus | None = None
    memory: MemoryStatus | None = None
    scheduler: SchedulerStatus | None = Field(default=None, description="absent when no analyzers run here")
    llm: LLMHealth | None = None


# -- anomalies -----------------------------------------------------------------------------------
class AnomalyEntity(Open):
    kind: Literal["service", "operation", "edge"]
    service: str
    operation: str | None = None
    target: str | None = None


class AnomalyFeature(Open):
    name: str
    value: float | None
    baseline: float | None
    ratio: float | None


class RootCause(Open):
    service: str
    score: float


class Anomaly(Open):
    id: str = Field(description="16 hex characters")
    entity: AnomalyEntity
    opened_at: str = Field(description="start of the first abnormal window (RFC 3339)")
    closed_at: str | None = Field(description="null while open")
    score: float
    severity: str
    features: list[AnomalyFeature]
    root_causes: list[RootCause] = Field(description="best first")
    evidence: dict[str, Any] | None
    status: Literal["open", "closed"]


class ModelState(Open):
    """What the detector is doing; the other keys depend on ``state`` (history, training, model)."""

    state: Literal["no_model", "training", "trained"]
    text: str | None = Field(
        default=None, description="one line for people, e.g. 'no model yet: 2 h of 6 h history'"
    )
    next_retrain_at: str | None = None


class AnomalyList(Open):
    anomalies: list[Anomaly]
    model: ModelState | None = Field(default=None, description="the live detector's state (list only)")


class RetrainAnswer(Open):
    model: ModelState


# -- LLM -----------------------------------------------------------------------------------------
class LLMUsage(Open):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    estimated: bool = Field(description="true when the provider reported none and it was counted locally")


class LLMCache(Open):
    hit: bool
    age_s: float | None


class LLMAnswer(Open):
    text: str
    json_: Any = Field(alias="json", description="the parsed object when a schema was asked for")
    provider: str
    model: str
    deployment: str
    group: str
    task: str
    usage: LLMUsage
    cost_usd: float
    latency_ms: float
    finish_reason: str | None
    cache: LLMCache
    attempts: int
    fallbacks: list[Any]
    conversation_id: str | None


class LLMModels(Open):
    groups: dict[str, list[str]]
    tasks: dict[str, list[str]] = Field(description="task type → fallback chain of groups")
    strategy: str
    deployments: list[dict[str, Any]]


class LLMUsageTotals(Open):
    requests: int
    errors: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    avg_latency_ms: float | None


class LLMUsageReport(Open):
    totals: LLMUsageTotals
    by_provider: list[dict[str, Any]]
    by_model: list[dict[str, Any]]
    by_task: list[dict[str, Any]]


class ConversationMessage(Open):
    role: str
    content: str


class Conversation(Open):
    id: str
    title: str | None
    system: str | None
    task: str
    model: str | None
    created_at: str
    updated_at: str
    message_count: int
    messages: list[ConversationMessage] | None = Field(
        default=None, description="only on a single conversation"
    )


class ConversationList(Open):
    conversations: list[Conversation]


class Deleted(Open):
    deleted: bool
    id: str


# -- insights ------------------------------------------------------------------------------------
class InsightEntity(Open):
    kind: Literal["service", "operation", "edge", "database", "messaging", "external"]
    id: str = Field(
        description="a topology node id; an edge is caller->callee; an operation service:operation"
    )


class InsightEvidence(Open):
    id: str
    kind: str = Field(description="metric | span_pattern | topology | anomaly | trace | deploy")
    description: str
    observed: Any = None
    baseline: Any = None
    unit: str | None = None
    trace_ids: list[str] = Field(default_factory=list)


class Claim(Open):
    text: str
    evidence_ids: list[str]


class Recommendation(Open):
    action: str
    rationale: str
    evidence_ids: list[str]


class InsightRootCause(Open):
    entity: Any
    change_type: str
    evidence_ids: list[str]


class Window(Open):
    start: str
    end: str


class Insight(Open):
    id: str
    fingerprint: str
    kind: str
    category: str
    title: str
    summary: str
    severity: Literal["critical", "high", "medium", "low", "info"] = Field(description="set by code")
    confidence: float = Field(description="0..1, set by code")
    status: Literal["open", "resolved", "expired"]
    first_seen: str
    last_seen: str
    window: Window
    entities: list[InsightEntity]
    root_cause: InsightRootCause | None
    evidence: list[InsightEvidence]
    claims: list[Claim]
    recommendations: list[Recommendation]
    abstained: bool
    llm: dict[str, Any] | None = Field(
        description="provider, model, tokens, cost, latency, cached, prompt_version"
    )


class InsightList(Open):
    insights: list[Insight] = Field(description="most severe first")


class Answer(Open):
    answer: str
    claims: list[Claim]
    insight_ids: list[str]
    abstained: bool
    llm: dict[str, Any] | None
