"""Tables of the ``anomaly`` component: stored anomalies and persisted models.

``otel_ai_anomalies`` is a ReplacingMergeTree keyed by id (the newest ``Version`` wins), so an
anomaly is written when it opens and rewritten when it grows or closes. ``otel_ai_anomaly_models``
keeps every trained model (numpy weights as a base64 ``.npz`` blob, never a pickle) with its
feature schema and schema version, so a restart resumes with the same model.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from otel_ai.storage import Storage
from otel_ai.storage.schema import Migration, TableSpec
from otel_ai.timeutil import parse_instant, rfc3339

COMPONENT = "anomaly"
# Stored ``Source`` values per public source ("detect" is what replays were stored as before).
SOURCES = {"live": ("live",), "replay": ("replay", "detect")}
SCHEMA_VERSION = 3  # bump when the feature definitions change: older models are then ignored

ANOMALIES = TableSpec(
    name="otel_ai_anomalies",
    columns="""
    Id String,
    Version UInt64,
    Source LowCardinality(String),
    Status LowCardinality(String),
    OpenedAt DateTime64(3),
    ClosedAt Nullable(DateTime64(3)),
    EntityKind LowCardinality(String),
    EntityService LowCardinality(String),
    EntityOperation String,
    EntityTarget String,
    Services Array(String),
    Score Float64,
    Severity LowCardinality(String),
    Features String CODEC(ZSTD(1)),
    RootCauses String CODEC(ZSTD(1)),
    Evidence String CODEC(ZSTD(1)),
    ModelId String
""",
    engine="ReplacingMergeTree(Version)",
    order_by="Id",
    ttl="toDateTime(OpenedAt)",
    sharding_key="cityHash64(Id)",
)

MODELS = TableSpec(
    name="otel_ai_anomaly_models",
    columns="""
    ModelId String,
    CreatedAt DateTime64(3),
    SchemaVersion UInt32,
    Kind LowCardinality(String),
    WindowS UInt32,
    TrainStart DateTime64(3),
    TrainEnd DateTime64(3),
    Threshold Float64,
    FeatureSchema String CODEC(ZSTD(1)),
    Blob String CODEC(ZSTD(1))
""",
    order_by="(SchemaVersion, CreatedAt)",
)

MIGRATIONS = (Migration(1, "anomalies and models", (ANOMALIES, MODELS)),)


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    created_at: datetime
    window_s: int
    train_start: datetime
    train_end: datetime
    features: list[str]
    blob: bytes


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


class AnomalyStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def migrate(self) -> list[int]:
        return self.storage.apply_migrations(COMPONENT, MIGRATIONS)

    # -- models -----------------------------------------------------------------------------
    def save_model(self, m: StoredModel, threshold: float) -> None:
        self.storage.insert(
            MODELS.name,
            [[m.model_id, _naive(m.created_at), SCHEMA_VERSION, "autoencoder", m.window_s, _naive(m.train_start),
              _naive(m.train_end), threshold, json.dumps(m.features), base64.b64encode(m.blob).decode()]],
            ["ModelId", "CreatedAt", "SchemaVersion", "Kind", "WindowS", "TrainStart", "TrainEnd", "Threshold",
             "FeatureSchema", "Blob"],
        )  # fmt: skip

    def latest_model(self, window_s: int) -> StoredModel | None:
        rows = self.storage.query(
            "SELECT ModelId, CreatedAt, WindowS, TrainStart, TrainEnd, FeatureSchema, Blob"
            " FROM {db:Identifier}.otel_ai_anomaly_models"
            " WHERE SchemaVersion = {v:UInt32} AND WindowS = {w:UInt32} ORDER BY CreatedAt DESC LIMIT 1",
            {"db": self.storage.database, "v": SCHEMA_VERSION, "w": window_s},
        )
        if not rows:
            return None
        mid, created, w, ts, te, schema, blob = rows[0]
        return StoredModel(
            str(mid), created.replace(tzinfo=UTC), int(w), ts.replace(tzinfo=UTC), te.replace(tzinfo=UTC),
            list(json.loads(schema)), base64.b64decode(blob),
        )  # fmt: skip

    # -- anomalies --------------------------------------------------------------------------
    def save_anomaly(self, a: dict[str, Any], source: str) -> None:
        ent = a["entity"]
        ev = a["evidence"]
        opened = parse_instant(a["opened_at"])
        closed = parse_instant(a["closed_at"]) if a.get("closed_at") else None
        self.storage.insert(
            ANOMALIES.name,
            [[a["id"], time.time_ns(), source, "closed" if closed else "open", _naive(opened),
              _naive(closed) if closed else None, ent["kind"], ent["service"] or "", ent.get("operation") or "",
              ent.get("target") or "", list(ev.get("services", [])), float(a["score"]), a["severity"],
              json.dumps(a["features"]), json.dumps(a["root_causes"]), json.dumps(ev), ev.get("model_id", "")]],
            ["Id", "Version", "Source", "Status", "OpenedAt", "ClosedAt", "EntityKind", "EntityService",
             "EntityOperation", "EntityTarget", "Services", "Score", "Severity", "Features", "RootCauses",
             "Evidence", "ModelId"],
        )  # fmt: skip

    _SELECT = (
        "SELECT Id, Source, Status, OpenedAt, ClosedAt, EntityKind, EntityService, EntityOperation,"
        " EntityTarget, Score, Severity, Features, RootCauses, Evidence"
        " FROM {db:Identifier}.otel_ai_anomalies FINAL"
    )

    def find(self, start: datetime, end: datetime, *, service: str | None = None, status: str | None = None,
             source: str = "all", limit: int = 1000) -> list[dict[str, Any]]:  # fmt: skip
        """Anomalies overlapping ``[start, end)``, newest first; ``source`` live|replay|all."""
        where = ["OpenedAt < {end:DateTime64(3)}", "(ClosedAt IS NULL OR ClosedAt >= {start:DateTime64(3)})"]
        params: dict[str, Any] = {"db": self.storage.database, "start": _naive(start), "end": _naive(end)}
        if service:
            where.append("(EntityService = {svc:String} OR has(Services, {svc:String}))")
            params["svc"] = service
        if status:
            where.append("Status = {status:String}")
            params["status"] = status
        if source != "all":
            where.append("Source IN {sources:Array(String)}")
            params["sources"] = list(SOURCES[source])
        sql = f"{self._SELECT} WHERE {' AND '.join(where)} ORDER BY OpenedAt DESC, Id LIMIT {int(limit)}"
        return [self._row(r) for r in self.storage.query(sql, params)]

    def get(self, anomaly_id: str) -> dict[str, Any] | None:
        rows = self.storage.query(
            f"{self._SELECT} WHERE Id = {{id:String}}", {"db": self.storage.database, "id": anomaly_id}
        )
        return self._row(rows[0]) if rows else None

    def open_ids(self) -> list[dict[str, Any]]:
        return [
            self._row(r)
            for r in self.storage.query(
                f"{self._SELECT} WHERE Status = 'open' AND Source = 'live'", {"db": self.storage.database}
            )
        ]

    def closed_since(self, since: datetime) -> list[dict[str, Any]]:
        """Live anomalies closed at or after ``since`` (the tracker's cool-down after a restart)."""
        sql = (
            f"{self._SELECT} WHERE Status = 'closed' AND Source = 'live'"
            " AND ClosedAt >= {since:DateTime64(3)}"
        )
        return [
            self._row(r)
            for r in self.storage.query(sql, {"db": self.storage.database, "since": _naive(since)})
        ]

    @staticmethod
    def _row(r: tuple[Any, ...]) -> dict[str, Any]:
        (aid, source, status, opened, closed, kind, svc, op, target, score, severity, feats, roots, ev) = r
        return {
            "id": aid,
            "entity": {"kind": kind, "service": svc, "operation": op or None, "target": target or None},
            "status": status,
            "source": "replay" if source in SOURCES["replay"] else source,
            "opened_at": rfc3339(opened.replace(tzinfo=UTC)),
            "closed_at": rfc3339(closed.replace(tzinfo=UTC)) if closed else None,
            "score": score,
            "severity": severity,
            "features": json.loads(feats),
            "root_causes": json.loads(roots),
            "evidence": json.loads(ev),
        }
