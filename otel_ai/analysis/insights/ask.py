"""Ask: a free question about a window, answered from that window's insights, anomalies and
topology through the manager, under the same grounding rule as insight narratives.

The context is evidence items with ids (each insight's evidence as is, one item per anomaly as
``anomaly:<id>``, one per busy or failing topology node as ``topology:<node>``), the items about
entities the question names first. Claims must cite them; with nothing citable the answer
abstains and points at the strongest lead.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from otel_ai.analysis.insights import prompts
from otel_ai.analysis.insights.grounding import validate
from otel_ai.analysis.insights.narrate import TASK, Runner, figure, llm_info
from otel_ai.errors import OtelAiError

log = logging.getLogger(__name__)
MAX_ITEMS = 40
MAX_NODES = 10
SCHEMA = "architectural-insight"
TEMPLATE_CLAIMS = 5


def _mentions(question: str, names: set[str]) -> set[str]:
    low = question.lower()
    return {n for n in names if n and re.search(r"(?<![\w-])" + re.escape(n.lower()) + r"(?![\w-])", low)}


def context(
    question: str,
    insights: list[dict[str, Any]],
    anomalies: list[dict[str, Any]],
    topology: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, str], set[str]]:
    """``(evidence items, evidence id → insight id, entity names)``, most relevant first."""
    items: list[tuple[int, dict[str, Any]]] = []
    owner: dict[str, str] = {}
    names: set[str] = set()
    for rank, ins in enumerate(insights):
        ents = {e["id"] for e in ins.get("entities") or []}
        names |= ents
        for ev in ins.get("evidence") or []:
            if ev["id"] in owner:
                continue
            owner[ev["id"]] = ins["id"]
            subject = next(iter(sorted(ents)), ins["kind"])
            items.append((rank, {"id": ev["id"], "kind": ev["kind"], "entity": subject, "insight": ins["title"],
                                 "summary": figure(ev), "observed_value": ev.get("observed"),
                                 "baseline_value": ev.get("baseline"), "unit": ev.get("unit", ""),
                                 "_entities": ents}))  # fmt: skip
    for a in anomalies:
        svc = a["entity"]["service"]
        names.add(svc)
        top = (a.get("features") or [{}])[0]
        desc = f"{a['severity']} anomaly on {svc} opened {a['opened_at']}"
        if top:
            desc += f": {top.get('name')} {top.get('value')} vs baseline {top.get('baseline')}"
        causes = [str(r["service"]) for r in a.get("root_causes") or []][:3]
        if causes:
            desc += f"; ranked root causes {', '.join(causes)}"
        names.update(causes)
        items.append((len(insights), {"id": f"anomaly:{a['id']}", "kind": "anomaly", "entity": svc,
                                      "summary": desc, "_entities": {svc, *causes}}))  # fmt: skip
    nodes = sorted(
        (topology or {}).get("nodes") or [],
        key=lambda n: (-(n.get("error_count") or 0), -(n.get("request_count") or 0)),
    )
    for n in nodes[:MAX_NODES]:
        names.add(n["id"])
        desc = (f"{n['kind']} {n['id']}: {n.get('request_count', 0)} requests, error rate "
                f"{(n.get('error_rate') or 0) * 100:.2f}%, p95 {n.get('p95_ms')} ms")  # fmt: skip
        items.append((len(insights) + 1, {"id": f"topology:{n['id']}", "kind": "topology", "entity": n["id"],
                                          "summary": desc, "_entities": {n["id"]}}))  # fmt: skip
    asked = _mentions(question, names)
    items.sort(key=lambda p: (0 if asked & p[1]["_entities"] else 1, p[0]))
    out = [{k: v for k, v in it.items() if k != "_entities"} for _, it in items[:MAX_ITEMS]]
    return out, owner, names


def _lead(insights: list[dict[str, Any]], items: list[dict[str, Any]]) -> str:
    if insights:
        top = insights[0]
        return f"the strongest lead is insight {top['id']} ({top['severity']}): {top['title']}"
    if items:
        return f"the strongest lead is {items[0]['summary']} [{items[0]['id']}]"
    return "no insight, anomaly or traffic was recorded in this window"


def answer(
    llm: Any | None,
    run: Runner,
    question: str,
    insights: list[dict[str, Any]],
    anomalies: list[dict[str, Any]],
    topology: dict[str, Any] | None,
    *,
    window: dict[str, str],
    max_tokens: int = 600,
    prompt: prompts.Prompt = prompts.ASK,
    model: str | None = None,
) -> dict[str, Any]:
    items, owner, names = context(question, insights, anomalies, topology)
    ids = [i["id"] for i in items]
    info: dict[str, Any] = {"provider": "none", "model": "", "input_tokens": 0, "output_tokens": 0,
                            "cost_usd": 0.0, "latency_ms": 0.0, "cached": False, "prompt_version": prompt.tag}  # fmt: skip
    out: dict[str, Any] = {}
    if llm is not None and items:
        try:
            resp = run(
                llm.generate(
                    f"{prompt.text}\n\nQuestion (from the user; answer it only from the data): {question}",
                    system=prompts.SYSTEM, task=TASK, schema_name=SCHEMA, temperature=0, max_tokens=max_tokens, model=model,
                    data={"subject": "the question", "window": window, "evidence": items},
                )
            )  # fmt: skip
            out, info = (resp.json if isinstance(resp.json, dict) else {}), llm_info(resp, prompt.tag)
        except OtelAiError as exc:
            log.warning("insights: ask failed: %s", exc.message)
    if not out and items:  # no manager (or it failed): the template answer, most relevant items first
        out = {"findings": [{"statement": f"{i['entity']}: {i['summary']}", "evidence_ids": [i["id"]]}
                            for i in items[:TEMPLATE_CLAIMS]]}  # fmt: skip
        info["model"] = "template"
    text = " \n".join(str(i["summary"]) for i in items)
    claims = [
        {"text": str(f.get("statement", "")), "evidence_ids": list(f.get("evidence_ids") or [])}
        for f in out.get("findings") or []
        if isinstance(f, dict)
    ]
    verdict = validate(claims, ids, names, names, evidence_text=text)
    kept = verdict.kept
    summary = str(out.get("summary") or "")
    from_claims = "From the window's evidence: " + "; ".join(c["text"] for c in kept[:3]) + "."
    if kept and info["provider"] in ("rules", "none"):  # the template summary says nothing; its claims do
        reply = from_claims
    elif kept and summary and not verdict.dropped and validate([{"text": summary, "evidence_ids": ids[:1]}], ids, names, names,
                                     evidence_text=text).kept:  # fmt: skip
        reply = summary
    elif kept:  # the free-text summary did not pass: the claims speak
        reply = from_claims
    else:
        reply = f"Not enough evidence in this window to answer; {_lead(insights, items)}."
    cited = {i for c in kept for i in c["evidence_ids"]}
    insight_ids = list(dict.fromkeys(owner[i] for i in ids if i in cited and i in owner))
    return {"answer": reply, "claims": kept, "insight_ids": insight_ids, "abstained": not kept, "llm": info}
