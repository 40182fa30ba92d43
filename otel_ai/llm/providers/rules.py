"""``rules`` provider: no model. Deterministic template output so the manager always answers.

For the insight schemas it fills every field from the structured input (``data.evidence``),
one cited claim per evidence item, ranked as given (code upstream already ranked them). With no
evidence it abstains. For another schema it emits the smallest valid instance; for free text a
fixed notice plus a digest of the data.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from otel_ai.llm.providers.base import Provider
from otel_ai.llm.types import Chunk, ProviderCall, Usage, estimate_tokens

MAX_CLAIMS = 5


def _evidence(data: Any) -> list[dict[str, Any]]:
    items = data.get("evidence") if isinstance(data, dict) else None
    out = []
    for i, ev in enumerate(items or []):
        if isinstance(ev, dict):
            out.append({**ev, "id": str(ev.get("id") or f"e{i + 1}")})
    return out


def _describe(ev: dict[str, Any]) -> str:
    entity = ev.get("entity") or ev.get("service") or ev.get("kind") or "evidence"
    summary = ev.get("summary") or ev.get("description") or ev.get("name") or "observed deviation"
    text = f"{entity}: {summary}"
    if ev.get("observed") is not None and ev.get("baseline") is not None:
        text += f" (observed {ev['observed']}, baseline {ev['baseline']})"
    return text


def fill_insight(schema_name: str, data: Any) -> dict[str, Any]:
    """The deterministic answer for one of :data:`otel_ai.llm.schemas.SCHEMAS`."""
    evidence = _evidence(data)[:MAX_CLAIMS]
    subject = (
        str((data or {}).get("subject") or (evidence[0].get("entity") if evidence else "") or "the system")
        if isinstance(data, dict)
        else "the system"
    )
    claims = [{"statement": _describe(ev), "evidence_ids": [ev["id"]]} for ev in evidence]
    all_ids = [ev["id"] for ev in evidence]
    recs = (
        [
            {
                "action": f"Investigate {evidence[0].get('entity') or subject} first",
                "rationale": "It carries the strongest evidence listed.",
                "evidence_ids": [all_ids[0]],
            }
        ]
        if evidence
        else []
    )
    n = len(evidence)
    summary = (
        f"{n} piece(s) of evidence about {subject}; template narrative (no language model used)."
        if n
        else f"No evidence supplied about {subject}; nothing to conclude."
    )
    if schema_name == "anomaly-explanation":
        return {
            "title": f"Anomaly on {subject}"[:200],
            "summary": summary,
            "hypotheses": claims,
            "impact": f"Affects {subject}." if n else "Unknown.",
            "recommendations": recs,
            "abstained": n == 0,
        }
    if schema_name == "report-summary":
        return {
            "title": f"Report for {subject}"[:200],
            "summary": summary,
            "highlights": claims,
            "recommendations": recs,
        }
    return {
        "title": f"Architecture of {subject}"[:200],
        "summary": summary,
        "findings": claims,
        "recommendations": recs,
    }


def minimal_instance(schema: dict[str, Any]) -> Any:
    """The smallest value that satisfies the common JSON Schema shapes (used for other schemas)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: minimal_instance(props.get(k, {})) for k in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(schema.get("items", {})) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        return "n/a".ljust(int(schema.get("minLength", 0)), ".")[: max(3, int(schema.get("minLength", 0)))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


class RulesProvider(Provider):
    kind = "rules"
    can_stream = True
    default_context_window = 10_000_000

    async def execute(self, call: ProviderCall, *, stream: bool) -> AsyncGenerator[Chunk, None]:
        from otel_ai.llm.schemas import INSIGHT_SCHEMAS

        if call.schema is not None:
            value = (
                fill_insight(call.schema_name or "", call.data)
                if call.schema_name in INSIGHT_SCHEMAS
                else minimal_instance(call.schema)
            )
            text = json.dumps(value, ensure_ascii=False)
        else:
            digest = ""
            if call.data is not None:
                ev = _evidence(call.data)
                digest = " " + " ".join(f"[{e['id']}] {_describe(e)}." for e in ev[:MAX_CLAIMS]) if ev else ""
            text = (
                "No language model is available; this is a template answer from the rules provider." + digest
            )
        usage = Usage(
            input_tokens=sum(estimate_tokens(m.content) for m in call.messages),
            output_tokens=estimate_tokens(text),
            estimated=True,
        )
        yield Chunk(text=text)
        yield Chunk(usage=usage, finish_reason="stop", response_model="rules")
