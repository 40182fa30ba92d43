"""Daemon glue: builds the :class:`LLMManager` with ClickHouse-backed conversations and usage
records (``otel_ai_llm_*`` tables). The one module of :mod:`otel_ai.llm` that imports storage."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from otel_ai.llm.accounting import CallRecord
from otel_ai.llm.config import LLMConfig
from otel_ai.llm.conversations import Conversation
from otel_ai.llm.manager import LLMManager
from otel_ai.llm.types import Message
from otel_ai.storage import Storage
from otel_ai.storage.schema import Migration, TableSpec

CONVERSATIONS = TableSpec(
    name="otel_ai_llm_conversations",
    columns="""
    Id String,
    CreatedAt DateTime64(3),
    UpdatedAt DateTime64(3),
    Title String,
    System String,
    Task LowCardinality(String),
    Model String,
    Deleted UInt8""",
    engine="ReplacingMergeTree(UpdatedAt)",
    order_by="Id",
    sharding_key="cityHash64(Id)",
)
MESSAGES = TableSpec(
    name="otel_ai_llm_messages",
    columns="""
    ConversationId String,
    Seq UInt64,
    Role LowCardinality(String),
    Content String,
    CreatedAt DateTime64(3)""",
    engine="ReplacingMergeTree(CreatedAt)",
    order_by="(ConversationId, Seq)",
    sharding_key="cityHash64(ConversationId)",
)
CALLS = TableSpec(
    name="otel_ai_llm_calls",
    columns="""
    Timestamp DateTime64(3),
    Task LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    Deployment LowCardinality(String),
    InputTokens UInt64,
    OutputTokens UInt64,
    CostUSD Float64,
    LatencyS Float64,
    Ok UInt8,
    Cached UInt8,
    ErrorType LowCardinality(String)""",
    order_by="(Provider, Model, Task, Timestamp)",
    partition_by="toYYYYMM(Timestamp)",
    ttl="toDateTime(Timestamp)",
)
MIGRATIONS = [Migration(1, "llm conversations, messages and call records", (CONVERSATIONS, MESSAGES, CALLS))]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value or 0)


class ClickHouseConversationStore:
    """Conversations survive restarts; delete writes a tombstone (ReplacingMergeTree)."""

    _CONV_COLS = ("Id", "CreatedAt", "UpdatedAt", "Title", "System", "Task", "Model", "Deleted")

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _write(self, conv: Conversation, deleted: int = 0) -> None:
        row = [
            conv.id,
            _dt(conv.created_at),
            _dt(conv.updated_at or time.time()),
            conv.title,
            conv.system,
            conv.task,
            conv.model or "",
            deleted,
        ]
        self.storage.insert(CONVERSATIONS.name, [row], self._CONV_COLS)

    def create(self, conv: Conversation) -> None:
        self._write(conv)

    def append(self, conv_id: str, first_seq: int, messages: list[Message]) -> None:
        conv = self.get(conv_id, with_messages=False)
        if conv is None:
            return
        now = time.time()
        rows = [[conv_id, first_seq + i, m.role, m.content, _dt(now)] for i, m in enumerate(messages)]
        self.storage.insert(MESSAGES.name, rows, ("ConversationId", "Seq", "Role", "Content", "CreatedAt"))
        conv.updated_at = now
        self._write(conv)

    def _rows(self, where: str, params: dict[str, Any], limit: int) -> list[Conversation]:
        sql = (
            "SELECT Id, CreatedAt, UpdatedAt, Title, System, Task, Model FROM {db:Identifier}.otel_ai_llm_conversations FINAL "
            f"WHERE Deleted = 0 {where} ORDER BY UpdatedAt DESC LIMIT {{limit:UInt32}}"
        )
        rows = self.storage.query_dicts(sql, {"db": self.storage.database, "limit": limit, **params})
        return [
            Conversation(
                r["Id"],
                _ts(r["CreatedAt"]),
                r["Title"],
                r["System"],
                r["Task"],
                r["Model"] or None,
                [],
                _ts(r["UpdatedAt"]),
            )
            for r in rows
        ]

    def get(self, conv_id: str, with_messages: bool = True) -> Conversation | None:
        found = self._rows("AND Id = {id:String}", {"id": conv_id}, 1)
        if not found:
            return None
        conv = found[0]
        if with_messages:
            rows = self.storage.query(
                "SELECT Role, Content FROM {db:Identifier}.otel_ai_llm_messages FINAL WHERE ConversationId = {id:String} ORDER BY Seq",
                {"db": self.storage.database, "id": conv_id},
            )
            conv.messages = [Message(r[0], r[1]) for r in rows]
        return conv

    def list(self, limit: int) -> list[Conversation]:
        convs = self._rows("", {}, limit)
        if convs:
            counts = self.storage.query(
                "SELECT ConversationId, count() FROM {db:Identifier}.otel_ai_llm_messages FINAL WHERE ConversationId IN {ids:Array(String)} GROUP BY ConversationId",
                {"db": self.storage.database, "ids": [c.id for c in convs]},
            )
            by_id = {r[0]: int(r[1]) for r in counts}
            for c in convs:
                c.message_count = by_id.get(c.id, 0)
        return convs

    def delete(self, conv_id: str) -> bool:
        conv = self.get(conv_id, with_messages=False)
        if conv is None:
            return False
        conv.updated_at = max(time.time(), conv.updated_at + 0.001)
        self._write(conv, deleted=1)
        return True


class ClickHouseUsageStore:
    """One row per provider attempt or cache hit; totals are a GROUP BY."""

    _COLS = (
        "Timestamp",
        "Task",
        "Provider",
        "Model",
        "Deployment",
        "InputTokens",
        "OutputTokens",
        "CostUSD",
        "LatencyS",
        "Ok",
        "Cached",
        "ErrorType",
    )

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def record(self, records: list[CallRecord]) -> None:
        rows = [
            [
                _dt(r.ts),
                r.task,
                r.provider,
                r.model,
                r.deployment,
                r.input_tokens,
                r.output_tokens,
                r.cost_usd,
                r.latency_s,
                int(r.ok),
                int(r.cached),
                r.error_type,
            ]
            for r in records
        ]
        self.storage.insert(CALLS.name, rows, self._COLS)

    def rows(self) -> list[dict[str, Any]]:
        return self.storage.query_dicts(
            "SELECT Provider AS provider, Model AS model, Task AS task, count() AS requests, "
            "toUInt64(countIf(Ok = 0)) AS errors, toUInt64(countIf(Cached = 1)) AS cache_hits, "
            "sum(InputTokens) AS input_tokens, sum(OutputTokens) AS output_tokens, sum(CostUSD) AS cost_usd, "
            "sumIf(LatencyS, Ok = 1 AND Cached = 0) AS latency_s "
            "FROM {db:Identifier}.otel_ai_llm_calls GROUP BY Provider, Model, Task",
            {"db": self.storage.database},
        )


def build_llm_manager(
    config: LLMConfig, storage: Storage | None, registry: CollectorRegistry | None, **kwargs: Any
) -> LLMManager | None:
    """The daemon's manager (``None`` when ``llm.enabled`` is false). Applies the migrations."""
    if not config.enabled:
        return None
    conversations = usage = None
    if storage is not None:
        storage.apply_migrations("llm", MIGRATIONS)
        conversations, usage = ClickHouseConversationStore(storage), ClickHouseUsageStore(storage)
    return LLMManager(config, conversations=conversations, usage_store=usage, registry=registry, **kwargs)
