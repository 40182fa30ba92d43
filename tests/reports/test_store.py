"""The archive: retention by ExpiresAt (a table TTL plus filtered reads), and the per-attempt rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from otel_ai.reports.store import ReportStore
from otel_ai.timeutil import rfc3339


def _doc(rid: str, created: datetime) -> dict[str, Any]:
    w = {"start": rfc3339(created - timedelta(hours=1)), "end": rfc3339(created)}
    return {"id": rid, "name": "retention", "created_at": rfc3339(created), "window": w, "status": "healthy",
            "counts": {"anomalies_opened": 0}, "figures": []}  # fmt: skip


def test_retention_drops_old_reports(seeded: Any) -> None:
    storage, _ = seeded
    store = ReportStore(storage, retention_days=30)
    store.migrate()
    now = datetime.now(UTC)
    store.save(_doc("00000000000000a1", now - timedelta(days=45)), None)  # past its retention
    store.save(_doc("00000000000000a2", now - timedelta(days=5)), now - timedelta(days=5))
    listed = [r["id"] for r in store.list(None, None, "retention")]
    assert listed == ["00000000000000a2"]
    assert store.get("00000000000000a1") is None and store.get("00000000000000a2") is not None
    engines = dict(storage.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name LIKE 'otel_ai_report%'",
        {"db": storage.database},
    ))  # fmt: skip
    assert all("TTL ExpiresAt" in e for e in engines.values()) and len(engines) == 2


def test_attempts_are_rows_of_their_own(seeded: Any) -> None:
    storage, _ = seeded
    store = ReportStore(storage, retention_days=30)
    store.migrate()
    rid = "00000000000000b1"
    store.save(_doc(rid, datetime.now(UTC)), None)
    for n, outcome in ((1, "retry"), (2, "ok")):
        store.record_attempt(rid, {"at": rfc3339(datetime.now(UTC)), "target": "http://h/x", "kind": "webhook/generic",
                                   "attempt": n, "outcome": outcome, "status_code": 503 if n == 1 else 200,
                                   "error": "HTTP 503" if n == 1 else None, "duration_ms": 3.0})  # fmt: skip
    got = store.get(rid)
    assert got is not None
    assert [(d["attempt"], d["outcome"], d["status_code"]) for d in got["deliveries"]] == [
        (1, "retry", 503),
        (2, "ok", 200),
    ]
    assert store.migrate() == []  # append-only migrations: applied once
