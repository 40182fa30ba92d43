"""The ``otel_ai_insights`` table: one row per insight occurrence, rewritten as it changes.

A ReplacingMergeTree keyed by ``Id`` (newest ``Version`` wins): a run that sees a finding again
rewrites its record (same id, later ``LastSeen``), a run that misses it rewrites the miss count
and maybe the status. The full record is kept as JSON; the columns beside it are what queries
filter on. Retention: the table's TTL on ``LastSeen`` follows ``storage.ttl_days``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from otel_ai.analysis.insights.record import most_severe_first, to_naive
from otel_ai.analysis.insights.scoring import RANK
from otel_ai.storage import Storage
from otel_ai.storage.schema import Migration, TableSpec
from otel_ai.timeutil import parse_instant

COMPONENT = "insights"
MAX_ROWS = 5000

INSIGHTS = TableSpec(
    name="otel_ai_insights",
    columns="""
    Id String,
    Fingerprint String,
    Version UInt64,
    Kind LowCardinality(String),
    Category LowCardinality(String),
    Status LowCardinality(String),
    Severity LowCardinality(String),
    SeverityRank UInt8,
    Confidence Float64,
    FirstSeen DateTime64(3),
    LastSeen DateTime64(3),
    Entities Array(String),
    MissedRuns UInt32,
    EvidenceHash String,
    Record String CODEC(ZSTD(1))
""",
    engine="ReplacingMergeTree(Version)",
    order_by="Id",
    ttl="toDateTime(LastSeen)",
    sharding_key="cityHash64(Id)",
)

MIGRATIONS = (Migration(1, "insights", (INSIGHTS,)),)
_COLUMNS = (
    "Id", "Fingerprint", "Version", "Kind", "Category", "Status", "Severity", "SeverityRank", "Confidence",
    "FirstSeen", "LastSeen", "Entities", "MissedRuns", "EvidenceHash", "Record",
)  # fmt: skip
_SELECT = "SELECT Status, MissedRuns, Record FROM {db:Identifier}.otel_ai_insights FINAL"


def entity_names(record: dict[str, Any]) -> list[str]:
    """Entity ids plus their parts (an edge's endpoints, an operation's service): what
    ``service=`` matches."""
    names: set[str] = set()
    for e in record.get("entities") or []:
        eid = str(e.get("id", ""))
        names.add(eid)
        if e.get("kind") == "edge":
            names.update(eid.split("->"))
        if e.get("kind") == "operation":
            names.add(eid.split(":", 1)[0])
    return sorted(n for n in names if n)


class InsightStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def migrate(self) -> list[int]:
        return self.storage.apply_migrations(COMPONENT, MIGRATIONS)

    def save(self, records: Iterable[dict[str, Any]]) -> None:
        rows = []
        version = time.time_ns()
        for r in records:
            rows.append(
                [
                    r["id"], r["fingerprint"], version, r["kind"], r["category"], r["status"], r["severity"],
                    RANK.get(r["severity"], 4), float(r["confidence"]), to_naive(parse_instant(r["first_seen"])),
                    to_naive(parse_instant(r["last_seen"])), entity_names(r), int(r.get("missed_runs", 0)),
                    r.get("evidence_hash", ""), json.dumps(r, ensure_ascii=False, default=str),
                ]
            )  # fmt: skip
        if rows:
            self.storage.insert(INSIGHTS.name, rows, _COLUMNS)

    def _read(
        self, where: Sequence[str], params: dict[str, Any], limit: int = MAX_ROWS
    ) -> list[dict[str, Any]]:
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY SeverityRank, LastSeen DESC, Id LIMIT {int(limit)}"
        out = []
        for status, missed, body in self.storage.query(sql, {"db": self.storage.database, **params}):
            rec = json.loads(body)
            rec["status"], rec["missed_runs"] = str(status), int(missed)
            out.append(rec)
        return out

    def by_fingerprints(self, fps: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The newest not-expired occurrence of each fingerprint."""
        fps = sorted(set(fps))
        if not fps:
            return {}
        rows = self._read(["Fingerprint IN {fps:Array(String)}", "Status != 'expired'"], {"fps": fps})
        out: dict[str, dict[str, Any]] = {}
        for rec in sorted(rows, key=lambda r: parse_instant(r["last_seen"])):
            out[rec["fingerprint"]] = rec
        return out

    def with_status(self, statuses: Sequence[str]) -> list[dict[str, Any]]:
        return self._read(["Status IN {st:Array(String)}"], {"st": list(statuses)})

    def stale(self, before: datetime) -> list[dict[str, Any]]:
        """Open or resolved insights last seen before ``before`` (candidates for expiry)."""
        return self._read(
            ["Status IN ('open', 'resolved')", "LastSeen < {before:DateTime64(3)}"],
            {"before": to_naive(before)},
        )

    def find(
        self,
        since: datetime,
        until: datetime,
        *,
        status: str | None = "open",
        kind: str | None = None,
        service: str | None = None,
        severity: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Insights seen in ``[since, until)``, most severe first."""
        where = ["FirstSeen < {until:DateTime64(3)}", "LastSeen >= {since:DateTime64(3)}"]
        params: dict[str, Any] = {"since": to_naive(since), "until": to_naive(until)}
        if status is not None:
            where.append("Status = {status:String}")
            params["status"] = status
        if kind is not None:
            where.append("Kind = {kind:String}")
            params["kind"] = kind
        if service is not None:
            where.append("has(Entities, {svc:String})")
            params["svc"] = service
        if severity is not None:
            where.append("Severity = {sev:String}")
            params["sev"] = severity
        return most_severe_first(self._read(where, params, limit))

    def get(self, insight_id: str) -> dict[str, Any] | None:
        rows = self._read(["Id = {id:String}"], {"id": insight_id}, 1)
        return rows[0] if rows else None
