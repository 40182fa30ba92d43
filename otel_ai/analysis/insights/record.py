"""A :class:`Finding` → the API's ``Insight`` record (a plain dict), plus the hashes that tie
records across runs: ``fingerprint`` = hash(kind, key) dedupes a finding across runs, ``id``
names one occurrence (fingerprint + first sighting), and the evidence hash tells whether a
finding changed enough to be narrated again.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

from otel_ai.analysis.insights.config import ScoringConfig
from otel_ai.analysis.insights.model import Entity, Evidence, Finding, Window
from otel_ai.analysis.insights.scoring import RANK, confidence, severity
from otel_ai.timeutil import rfc3339

# The contract's keys, in order; anything else on a record is internal bookkeeping.
PUBLIC_KEYS = (
    "id", "fingerprint", "kind", "category", "title", "summary", "severity", "confidence", "status",
    "first_seen", "last_seen", "window", "entities", "root_cause", "evidence", "claims",
    "recommendations", "abstained", "llm",
)  # fmt: skip
STATUSES = ("open", "resolved", "expired")
MAX_TRACE_IDS = 5


def _hash(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:n]


def fingerprint(kind: str, key: str) -> str:
    return _hash("fingerprint", kind, key)


def insight_id(fp: str, first_seen: str) -> str:
    return _hash("insight", fp, first_seen)


def entity_dict(e: Entity) -> dict[str, str]:
    return {"kind": e.kind, "id": e.id}


def evidence_dict(e: Evidence) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind,
        "description": e.description,
        "observed": e.observed,
        "baseline": e.baseline,
        "unit": e.unit,
        "trace_ids": list(e.trace_ids[:MAX_TRACE_IDS]),
    }


def _coarse(value: float | str | None) -> float | str | None:
    """Two significant digits: small drifts between runs are not a change worth a new narrative."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value == 0
        or not math.isfinite(value)
    ):
        return value
    digits = 1 - math.floor(math.log10(abs(value)))
    return round(float(value), digits)


def evidence_hash(finding: Finding, level: str) -> str:
    canon = json.dumps(
        {
            "title": finding.title,
            "severity": level,
            "entities": sorted(e.id for e in finding.entities),
            "evidence": [
                [e.id, e.kind, e.description, e.unit, _coarse(e.observed), _coarse(e.baseline)]
                for e in finding.evidence
            ],
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return _hash("evidence", canon, n=32)


def template_recommendations(finding: Finding) -> list[dict[str, Any]]:
    return [
        {"action": r.action, "rationale": r.rationale, "evidence_ids": list(r.evidence_ids)}
        for r in finding.recommendations
    ]


def build(finding: Finding, window: Window, cfg: ScoringConfig) -> dict[str, Any]:
    """A fresh record for ``finding`` seen in ``window`` (narrative fields empty until narrated)."""
    level = severity(finding, cfg)
    fp = fingerprint(finding.kind, finding.key)
    start, end = rfc3339(window.start), rfc3339(window.end)
    rc = finding.root_cause
    return {
        "id": insight_id(fp, start),
        "fingerprint": fp,
        "kind": finding.kind,
        "category": finding.category,
        "title": finding.title[:200],
        "summary": "",
        "severity": level,
        "confidence": confidence(finding, cfg),
        "status": "open",
        "first_seen": start,
        "last_seen": end,
        "window": {"start": start, "end": end},
        "entities": [entity_dict(e) for e in finding.entities],
        "root_cause": (
            {
                "entity": entity_dict(rc.entity),
                "change_type": rc.change_type,
                "evidence_ids": list(rc.evidence_ids),
            }
            if rc is not None
            else None
        ),
        "evidence": [evidence_dict(e) for e in finding.evidence],
        "claims": [],
        "recommendations": template_recommendations(finding),
        "abstained": False,
        "llm": None,
        # internal
        "evidence_hash": evidence_hash(finding, level),
        "missed_runs": 0,
    }


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in PUBLIC_KEYS}


def most_severe_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most severe first, then most confident, then most recently seen."""
    out = sorted(records, key=lambda r: (r.get("last_seen") or "", r["id"]), reverse=True)
    out.sort(key=lambda r: (RANK.get(r.get("severity") or "info", 9), -float(r.get("confidence") or 0)))
    return out


def to_naive(dt: datetime) -> datetime:
    """clickhouse-connect binds naive datetimes as UTC wall time."""
    return dt.astimezone(UTC).replace(tzinfo=None)
