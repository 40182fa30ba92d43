"""The executive summary: written by the LLM manager, kept only where it is grounded.

The model sees the report's strongest evidence (headline reasons, anomalies, insights, topology
changes, the services that moved most) as data, each item under the id the report shows. Every
highlight and recommendation must cite such ids; the shared grounding validator drops the ones
that cite nothing, cite an unknown id, or name a service the cited evidence is not about. The
model's free-text ``summary`` field is not shown (it cannot be checked claim by claim). With no
model configured the ``rules`` provider writes the summary deterministically, offline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from otel_ai.analysis.insights.grounding import Scope, validate
from otel_ai.analysis.insights.narrate import mentioned
from otel_ai.reports.render import fmt_value

log = logging.getLogger(__name__)
MAX_EVIDENCE = 12
PROMPT = (
    "Write the executive summary of this observability report for an on-call engineer: a one-line "
    "title saying whether the system was healthy and what broke, up to 5 highlights (most important "
    "first) and up to 3 recommendations of what to look at first. Every highlight and recommendation "
    "must cite the evidence ids it rests on. Use only the evidence given; do not name other services."
)


def evidence_for(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The citable evidence, strongest first: ``{id, kind, entity, summary, observed?, baseline?}``."""
    figs = {f["id"]: f for f in doc["figures"]}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(item: dict[str, Any]) -> None:
        if item["id"] not in seen and len(out) < MAX_EVIDENCE:
            seen.add(item["id"])
            out.append(item)

    def anomaly(a: dict[str, Any]) -> None:
        cause = a["root_causes"][0]["service"] if a["root_causes"] else a["entity"].get("service")
        top = a["top_features"][0] if a["top_features"] else {}
        feat = top.get("text") or top.get("name")
        add({"id": a["id"], "kind": "anomaly", "entity": a["entity"].get("service") or cause,
             "summary": f"{a['severity']} anomaly ({a['state']}) on {a['label']}; likely root cause {cause}"
                        + (f"; {feat}" if feat else "")})  # fmt: skip

    def insight(i: dict[str, Any]) -> None:
        ents = i.get("entities") or []
        add({"id": i["id"], "kind": "insight", "entity": ents[0]["id"] if ents else None,
             "summary": f"{i.get('severity')} insight: {i.get('title')}"})  # fmt: skip

    # Strongest first: real anomalies, the figures behind the headline, serious insights, changes;
    # then traffic notes and minor insights (the rules provider cites the first five).
    minor = ("info", "low", None)
    for a in [a for a in doc["anomalies"] if a["severity"] not in minor][:5]:
        anomaly(a)
    for r in doc["headline"]["reasons"]:
        for ref in r["refs"]:
            if ref in figs:
                f = figs[ref]
                add({"id": ref, "kind": "metric", "entity": ref[4:].rsplit(".", 1)[0] if ref.startswith("svc.") else None,
                     "summary": f["label"], "observed": fmt_value(f["value"], f["unit"]),
                     "baseline": fmt_value(f["previous"], f["unit"])})  # fmt: skip
    insights = doc["insights"]["items"]
    for i in [i for i in insights if i.get("severity") not in minor][:3]:
        insight(i)
    for ch in doc["topology"].get("changes", []):
        add({"id": ch["id"], "kind": "topology", "entity": ch["entity"], "summary": ch["text"]})
    for a in [a for a in doc["anomalies"] if a["severity"] in minor][:2]:
        anomaly(a)
    for i in [i for i in insights if i.get("severity") in minor][:2]:
        insight(i)
    for key in ("total.requests", "total.error_rate"):
        if key in figs:
            f = figs[key]
            add({"id": key, "kind": "metric", "entity": None, "summary": f["label"],
                 "observed": fmt_value(f["value"], f["unit"]), "baseline": fmt_value(f["previous"], f["unit"])})  # fmt: skip
    return out


def _entities(ev: list[dict[str, Any]], doc: dict[str, Any]) -> set[str]:
    allowed: set[str] = set()
    anomalies = {a["id"]: a for a in doc["anomalies"]}
    for e in ev:
        if e.get("entity"):
            allowed.add(str(e["entity"]))
        a = anomalies.get(e["id"])
        if a:
            allowed.update(a["services"])
            allowed.update(str(r["service"]) for r in a["root_causes"])
    return allowed


def scopes(ev: list[dict[str, Any]], doc: dict[str, Any], names: set[str]) -> dict[str, Scope]:
    """Per evidence item: the names its wording mentions (plus its entity and, for an anomaly, its
    services and root causes), that wording, and the raw figure behind a metric, so that every
    number a highlight states must be one of the figures it cites."""
    figs = {f["id"]: f for f in doc["figures"]}
    out: dict[str, Scope] = {}
    for e in ev:
        text = " ".join(str(e.get(k) or "") for k in ("entity", "summary", "observed", "baseline"))
        own = _entities([e], doc) | set(mentioned(names, text))
        f = figs.get(e["id"])
        fig = ((f["value"], f["previous"], str(f["unit"] or "")),) if f else ()
        out[e["id"]] = Scope(frozenset(own), text, fig)
    return out


def universe(doc: dict[str, Any]) -> set[str]:
    """Every entity name the report knows (for the 'names a service it is not about' check)."""
    names = {s["name"] for s in doc["services"]}
    t = doc["topology"]
    names.update(t.get("new_services", []))
    names.update(t.get("vanished_services", []))
    for e in t.get("new_edges", []) + t.get("vanished_edges", []):
        names.update((e["source"], e["target"]))
    return names


def write_summary(
    doc: dict[str, Any], llm: Any, run: Callable[[Coroutine[Any, Any, Any]], Any]
) -> dict[str, Any] | None:
    """Ask the LLM manager for the summary (``run`` drives its coroutine) and keep what is grounded."""
    if llm is None:
        return None
    ev = evidence_for(doc)
    subject = f"{doc['name']}: {doc['status']}"
    resp = run(llm.generate(PROMPT, task="report-summary", schema_name="report-summary",
                            data={"subject": subject, "status": doc["status"], "evidence": ev}))  # fmt: skip
    body = resp.json if isinstance(resp.json, dict) else {}
    ids = [e["id"] for e in ev]
    allowed, known = _entities(ev, doc), universe(doc)
    claims = [{"text": str(c.get("statement", "")), "evidence_ids": list(c.get("evidence_ids") or [])}
              for c in body.get("highlights", []) if isinstance(c, dict)]  # fmt: skip
    recs = [{"action": str(r.get("action", "")), "rationale": str(r.get("rationale", "")),
             "evidence_ids": list(r.get("evidence_ids") or [])}
            for r in body.get("recommendations", []) if isinstance(r, dict)]  # fmt: skip
    sc = scopes(ev, doc, allowed | known)
    kept_c = validate(claims, ids, allowed, known, scopes=sc)
    kept_r = validate(recs, ids, allowed, known, text_keys=("action", "rationale"), scopes=sc)
    dropped = len(kept_c.dropped) + len(kept_r.dropped)
    if dropped:
        log.info("report summary: %d claim(s) dropped by the grounding rule", dropped)
    return {
        "title": str(body.get("title") or f"{doc['status']}: {subject}")[:200],
        "claims": kept_c.kept,
        "recommendations": kept_r.kept,
        "dropped": dropped,
        "evidence_ids": ids,
        "llm": {
            "provider": resp.provider,
            "model": resp.model,
            "input_tokens": resp.usage.input_tokens,
            "output_tokens": resp.usage.output_tokens,
            "cost_usd": resp.cost_usd,
            "latency_ms": round(resp.latency_s * 1000, 1),
            "cached": resp.cached,
        },
    }
