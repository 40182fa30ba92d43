"""Named JSON schemas for insight output. Every claim cites evidence ids (``evidence_ids``,
at least one), so code downstream can drop uncited claims; severity and confidence are set by
code, not by the model, and are therefore absent here.

The expected structured input (``data``) for these schemas is::

    {"subject": "checkout", "evidence": [{"id": "e1", "kind": "metric", "entity": "checkout",
      "summary": "p95 latency 5x baseline", "observed": 1.2, "baseline": 0.24}, ...]}
"""

from __future__ import annotations

from typing import Any

from otel_ai.llm.errors import InvalidRequest

_IDS: dict[str, Any] = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_CLAIM: dict[str, Any] = {
    "type": "object",
    "properties": {"statement": {"type": "string", "minLength": 1}, "evidence_ids": _IDS},
    "required": ["statement", "evidence_ids"],
    "additionalProperties": False,
}
_RECOMMENDATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "minLength": 1},
        "rationale": {"type": "string"},
        "evidence_ids": _IDS,
    },
    "required": ["action", "rationale", "evidence_ids"],
    "additionalProperties": False,
}
_TITLE: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


ARCHITECTURAL_INSIGHT = _obj(
    {
        "title": _TITLE,
        "summary": {"type": "string"},
        "findings": {"type": "array", "items": _CLAIM},
        "recommendations": {"type": "array", "items": _RECOMMENDATION},
    }
)
ANOMALY_EXPLANATION = _obj(
    {
        "title": _TITLE,
        "summary": {"type": "string"},
        "hypotheses": {"type": "array", "items": _CLAIM},
        "impact": {"type": "string"},
        "recommendations": {"type": "array", "items": _RECOMMENDATION},
        "abstained": {"type": "boolean"},
    }
)
REPORT_SUMMARY = _obj(
    {
        "title": _TITLE,
        "summary": {"type": "string"},
        "highlights": {"type": "array", "items": _CLAIM},
        "recommendations": {"type": "array", "items": _RECOMMENDATION},
    }
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "architectural-insight": ARCHITECTURAL_INSIGHT,
    "anomaly-explanation": ANOMALY_EXPLANATION,
    "report-summary": REPORT_SUMMARY,
}
INSIGHT_SCHEMAS = frozenset(SCHEMAS)
TASK_SCHEMAS = {
    "architectural-insights": "architectural-insight",
    "anomaly-explanation": "anomaly-explanation",
    "report-summary": "report-summary",
}


def get_schema(name: str) -> dict[str, Any]:
    try:
        return SCHEMAS[name]
    except KeyError:
        raise InvalidRequest(f"schema_name: unknown schema {name!r}; known: {sorted(SCHEMAS)}") from None
