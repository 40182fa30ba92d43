"""The report archive in ClickHouse: ``otel_ai_reports`` and ``otel_ai_report_deliveries``.

A report row is written once (its canonical JSON document plus the columns lists filter on);
every delivery attempt is its own row, so recording an attempt never rewrites a report. Each
row carries ``ExpiresAt`` (creation + ``reports.retention_days``): a table TTL drops expired
rows in background merges and reads skip them before that. The newest ``ScheduledFor`` of a
schedule is how a restarted daemon knows which fire time it missed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from otel_ai.storage import Storage
from otel_ai.storage.schema import Migration, TableSpec
from otel_ai.timeutil import rfc3339

COMPONENT = "reports"

REPORTS = TableSpec(
    name="otel_ai_reports",
    columns="""
    Id String,
    Name LowCardinality(String),
    CreatedAt DateTime64(3),
    ScheduledFor Nullable(DateTime64(3)),
    WindowStart DateTime64(3),
    WindowEnd DateTime64(3),
    Status LowCardinality(String),
    Error String,
    Counts String,
    Document String CODEC(ZSTD(3)),
    ExpiresAt DateTime
""",
    order_by="(CreatedAt, Id)",
    sharding_key="cityHash64(Id)",
)

DELIVERIES = TableSpec(
    name="otel_ai_report_deliveries",
    columns="""
    ReportId String,
    At DateTime64(3),
    Target String,
    Kind LowCardinality(String),
    Attempt UInt16,
    Outcome LowCardinality(String),
    StatusCode UInt16,
    Error String,
    DurationMs Float64,
    ExpiresAt DateTime
""",
    order_by="(ReportId, At)",
    sharding_key="cityHash64(ReportId)",
)


def migrations(cluster: bool) -> tuple[Migration, ...]:
    local = "_local" if cluster else ""
    ttl = [
        f"ALTER TABLE {{db}}.`{t.name}{local}`{{on_cluster}} MODIFY TTL ExpiresAt"
        for t in (REPORTS, DELIVERIES)
    ]
    return (Migration(1, "report archive and delivery attempts", (REPORTS, DELIVERIES, *ttl)),)


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class ReportStore:
    def __init__(self, storage: Storage, retention_days: int) -> None:
        self.storage = storage
        self.retention = timedelta(days=retention_days)

    def migrate(self) -> list[int]:
        return self.storage.apply_migrations(COMPONENT, migrations(bool(self.storage.ctx.cluster)))

    def _p(self, **kw: Any) -> dict[str, Any]:
        return {"db": self.storage.database, **kw}

    def save(self, doc: dict[str, Any], scheduled_for: datetime | None) -> None:
        created = datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
        w = doc["window"]
        row = [doc["id"], doc["name"], _naive(created), _naive(scheduled_for) if scheduled_for else None,
               _naive(datetime.fromisoformat(w["start"].replace("Z", "+00:00"))),
               _naive(datetime.fromisoformat(w["end"].replace("Z", "+00:00"))), doc["status"], doc.get("error") or "",
               json.dumps(doc.get("counts", {})), json.dumps(doc, ensure_ascii=False),
               _naive(created + self.retention).replace(microsecond=0)]  # fmt: skip
        self.storage.insert(REPORTS.name, [row], ["Id", "Name", "CreatedAt", "ScheduledFor", "WindowStart",
                                                  "WindowEnd", "Status", "Error", "Counts", "Document", "ExpiresAt"])  # fmt: skip

    def record_attempt(self, report_id: str, attempt: dict[str, Any]) -> None:
        row = [report_id, _naive(datetime.fromisoformat(attempt["at"].replace("Z", "+00:00"))), attempt["target"],
               attempt["kind"], attempt["attempt"], attempt["outcome"], attempt.get("status_code") or 0,
               attempt.get("error") or "", attempt.get("duration_ms") or 0.0,
               _naive(datetime.now(UTC) + self.retention).replace(microsecond=0)]  # fmt: skip
        self.storage.insert(DELIVERIES.name, [row], ["ReportId", "At", "Target", "Kind", "Attempt", "Outcome",
                                                     "StatusCode", "Error", "DurationMs", "ExpiresAt"])  # fmt: skip

    def deliveries(self, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not ids:
            return {}
        rows = self.storage.query(
            "SELECT ReportId, At, Target, Kind, Attempt, Outcome, StatusCode, Error, DurationMs"
            " FROM {db:Identifier}.otel_ai_report_deliveries WHERE ReportId IN {ids:Array(String)}"
            " AND ExpiresAt > now() ORDER BY ReportId, At, Attempt",
            self._p(ids=ids),
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for rid, at, target, kind, attempt, outcome, code, err, ms in rows:
            out.setdefault(rid, []).append({
                "at": rfc3339(_utc(at)), "target": target, "kind": kind, "attempt": int(attempt),
                "outcome": outcome, "status_code": int(code) or None, "error": err or None,
                "duration_ms": round(float(ms), 1),
            })  # fmt: skip
        return out

    _LIST = (
        "SELECT Id, Name, CreatedAt, WindowStart, WindowEnd, Status, Error, Counts"
        " FROM {db:Identifier}.otel_ai_reports WHERE ExpiresAt > now()"
    )

    def list(self, since: datetime | None, until: datetime | None, name: str | None,
             limit: int = 200) -> list[dict[str, Any]]:  # fmt: skip
        """Reports whose window overlaps ``[since, until)`` (either bound optional), newest first."""
        where, params = [], self._p(limit=limit)
        if since is not None:
            where.append("WindowEnd > {since:DateTime64(3)}")
            params["since"] = _naive(since)
        if until is not None:
            where.append("WindowStart < {until:DateTime64(3)}")
            params["until"] = _naive(until)
        if name:
            where.append("Name = {name:String}")
            params["name"] = name
        sql = (
            self._LIST
            + "".join(f" AND {w}" for w in where)
            + " ORDER BY CreatedAt DESC, Id LIMIT {limit:UInt32}"
        )
        items = []
        for rid, nm, created, ws, we, status, err, counts in self.storage.query(sql, params):
            items.append({"id": rid, "name": nm, "created_at": rfc3339(_utc(created)),
                          "window": {"start": rfc3339(_utc(ws)), "end": rfc3339(_utc(we))}, "status": status,
                          "error": err or None, "counts": json.loads(counts), "deliveries": []})  # fmt: skip
        found = self.deliveries([i["id"] for i in items])
        for i in items:
            i["deliveries"] = found.get(i["id"], [])
        return items

    def get(self, report_id: str) -> dict[str, Any] | None:
        rows = self.storage.query(
            "SELECT Document FROM {db:Identifier}.otel_ai_reports WHERE Id = {id:String} AND ExpiresAt > now()"
            " ORDER BY CreatedAt DESC LIMIT 1",
            self._p(id=report_id),
        )
        if not rows:
            return None
        doc: dict[str, Any] = json.loads(rows[0][0])
        doc["deliveries"] = self.deliveries([report_id]).get(report_id, [])
        return doc

    def last_scheduled(self) -> dict[str, datetime]:
        """The newest fire time that ran (or failed) per schedule name."""
        rows = self.storage.query(
            "SELECT Name, max(ScheduledFor) FROM {db:Identifier}.otel_ai_reports"
            " WHERE ScheduledFor IS NOT NULL GROUP BY Name",
            self._p(),
        )
        return {str(n): _utc(t) for n, t in rows if t is not None}
