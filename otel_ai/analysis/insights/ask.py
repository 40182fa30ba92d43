"""Ask: a free question about a window, answered from the evidence relevant to it (the window's
insights, anomalies and topology) through the manager, under the same grounding rule as
insight narratives.

The context is evidence items with ids (each insight's evidence as is, one item per anomaly as
``anomaly:<id>``, one per busy or failing topology node as ``topology:<node>``). Only the items
the question is about (:mod:`relevance`: the entities it names, then the kinds its wording
points at; every item for a general question) go to the model or the template, ranked by that
match and then severity, within a token budget. With nothing relevant — or no claim surviving
the validator — the answer abstains: it says which named entities the window has not seen and
points at the strongest lead (a related item, else the top insight, labelled as unrelated).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from otel_ai.analysis.insights import prompts, relevance
from otel_ai.analysis.insights.figures import Figure
from otel_ai.analysis.insights.grounding import Scope, validate
from otel_ai.analysis.insights.narrate import TASK, Runner, figure, llm_info, mentioned
from otel_ai.errors import OtelAiError

log = logging.getLogger(__name__)
MAX_ITEMS = 40
MAX_NODES = 10
CONTEXT_TOKENS = 3000  # evidence sent with one question (about 4 characters a token)
SCHEMA = "architectural-insight"
TEMPLATE_CLAIMS = 5


@dataclass
class Item:
    """One citable evidence item of the window, with what relevance and the validator need."""

    data: dict[str, Any]  # what the model sees
    entities: set[str]  # what the item is about (for relevance)
    tags: set[str]  # its kind (and ``anomaly:latency``-style tags)
    rank: int  # severity order of its source (0: the most severe insight)
    figures: tuple[Figure, ...] = ()
    insight: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Context:
    items: list[Item]  # relevant, best first, within the budget
    related: list[Item]  # matching the question's wording only (an entity it does not name)
    unseen: list[str]  # names the question gives that the window has not seen
    names: set[str]  # every entity of the window
    owner: dict[str, str]  # evidence id → insight id


def _items(
    insights: list[dict[str, Any]], anomalies: list[dict[str, Any]], topology: dict[str, Any] | None
) -> list[Item]:
    out: list[Item] = []
    seen: set[str] = set()
    for rank, ins in enumerate(insights):
        ents = {e["id"] for e in ins.get("entities") or []}
        subject = next(iter(e["id"] for e in ins.get("entities") or []), ins["kind"])
        for ev in ins.get("evidence") or []:
            if ev["id"] in seen:
                continue
            seen.add(ev["id"])
            data = {"id": ev["id"], "kind": ev["kind"], "entity": subject, "insight": ins["title"],
                    "summary": figure(ev), "observed_value": ev.get("observed"),
                    "baseline_value": ev.get("baseline"), "unit": ev.get("unit", "")}  # fmt: skip
            figs: tuple[Figure, ...] = ((ev.get("observed"), ev.get("baseline"), str(ev.get("unit") or "")),)
            out.append(Item(data, ents, {ins["kind"]}, rank, figs, ins))
    for a in anomalies:
        svc = a["entity"]["service"]
        top = (a.get("features") or [{}])[0]
        desc = f"{a['severity']} anomaly on {svc} opened {a['opened_at']}"
        if top:
            desc += f": {top.get('name')} {top.get('value')} vs baseline {top.get('baseline')}"
        causes = [str(r["service"]) for r in a.get("root_causes") or []][:3]
        if causes:
            desc += f"; ranked root causes {', '.join(causes)}"
        feats = " ".join(f"{f.get('name')} {f.get('feature')}" for f in a.get("features") or []).lower()
        tags = {"anomaly"}
        if any(w in feats for w in ("latency", "duration", "p50", "p95", "p99")):
            tags.add("anomaly:latency")
        if "err" in feats:
            tags.add("anomaly:errors")
        figs = tuple(
            (f.get("value"), f.get("baseline"), str(f.get("unit") or "")) for f in a.get("features") or []
        )
        out.append(Item({"id": f"anomaly:{a['id']}", "kind": "anomaly", "entity": svc, "summary": desc},
                        {svc, *causes}, tags, len(insights), figs))  # fmt: skip
    nodes = sorted(
        (topology or {}).get("nodes") or [],
        key=lambda n: (-(n.get("error_count") or 0), -(n.get("request_count") or 0)),
    )
    for n in nodes[:MAX_NODES]:
        desc = (f"{n['kind']} {n['id']}: {n.get('request_count', 0)} requests, error rate "
                f"{(n.get('error_rate') or 0) * 100:.2f}%, p95 {n.get('p95_ms')} ms")  # fmt: skip
        tags = {"topology:latency", "topology:errors"}  # its p95 and error rate answer both
        figs = ((n.get("request_count"), None, "requests"), (n.get("error_rate"), None, "ratio"),
                (n.get("p95_ms"), None, "ms"), (n.get("error_count"), None, "errors"))  # fmt: skip
        out.append(Item({"id": f"topology:{n['id']}", "kind": "topology", "entity": n["id"], "summary": desc},
                        {n["id"]}, tags, len(insights) + 1, figs))  # fmt: skip
    return out


def _budget(items: list[Item], tokens: int) -> list[Item]:
    out: list[Item] = []
    used = 0
    for it in items[:MAX_ITEMS]:
        cost = (len(json.dumps(it.data, default=str)) + 3) // 4
        if out and used + cost > tokens:
            break
        out.append(it)
        used += cost
    return out


def context(
    question: str,
    insights: list[dict[str, Any]],
    anomalies: list[dict[str, Any]],
    topology: dict[str, Any] | None,
    *,
    focus: bool = True,
    tokens: int = CONTEXT_TOKENS,
) -> Context:
    """The relevant items of the window for ``question`` (``focus=False``: every item)."""
    items = _items(insights, anomalies, topology)
    names = set().union(*(it.entities for it in items)) if items else set()
    owner = {it.data["id"]: it.insight["id"] for it in items if it.insight is not None}
    q = relevance.parse(question)
    unseen = relevance.unseen(q, names) if focus else []
    scored = [(relevance.score(q, it.entities, it.tags), it) for it in items]
    named = any(ent for (ent, _), _ in scored)
    if not focus or not (named or q.intents or q.names):
        return Context(_budget(items, tokens), [], [], names, owner)  # a general question
    if named:
        relevant = [p for p in scored if p[0][0]]
        related = [it for (ent, intent), it in scored if intent and not ent and it.insight is not None]
    elif q.intents and not unseen:  # by kind alone; a topology node only when the question names it
        relevant = [p for p in scored if p[0][1] and p[1].data["kind"] != "topology"]
        related = []
    else:  # the question names only entities the window has not seen
        relevant, related = [], [it for (_, intent), it in scored if intent and it.insight is not None]
    # The wording's kinds first (insights by severity, anomalies, then the named nodes' figures).
    relevant.sort(key=lambda p: (-p[0][1], p[1].rank))
    return Context(_budget([it for _, it in relevant], tokens), related, unseen, names, owner)


def _lead(ctx: Context, insights: list[dict[str, Any]]) -> str:
    def about(it: Item) -> str:
        if it.insight is not None:
            ins = it.insight
            return f"insight {ins['id']} ({ins['severity']}): {ins['title']}"
        return f"{it.data['summary']} [{it.data['id']}]"

    if ctx.items:
        return f"the strongest lead is {about(ctx.items[0])}"
    if ctx.related:
        return f"the strongest related lead (about another entity) is {about(ctx.related[0])}"
    if insights:
        top = insights[0]
        return f"the strongest lead, unrelated to the question, is insight {top['id']} ({top['severity']}): {top['title']}"
    return "no insight, anomaly or traffic was recorded in this window"


def _scopes(ctx: Context) -> dict[str, Scope]:
    return {
        it.data["id"]: Scope(
            frozenset({it.data["entity"]}) | mentioned(ctx.names, str(it.data["summary"])),
            str(it.data["summary"]),
            it.figures,
        )
        for it in ctx.items
    }


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
    ctx = context(question, insights, anomalies, topology, focus=prompt is not prompts.DIGEST)
    items = [it.data for it in ctx.items]
    ids = [i["id"] for i in items]
    names = ctx.names
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
    scopes = _scopes(ctx)
    claims = [
        {"text": str(f.get("statement", "")), "evidence_ids": list(f.get("evidence_ids") or [])}
        for f in out.get("findings") or []
        if isinstance(f, dict)
    ]
    verdict = validate(claims, ids, names, names, evidence_text=text, scopes=scopes)
    kept = verdict.kept
    summary = str(out.get("summary") or "")
    from_claims = "From the window's evidence: " + "; ".join(c["text"] for c in kept[:3]) + "."
    if kept and info["provider"] in ("rules", "none"):  # the template summary says nothing; its claims do
        reply = from_claims
    elif kept and summary and not verdict.dropped and validate([{"text": summary, "evidence_ids": ids}], ids, names, names,
                                     evidence_text=text, scopes=scopes).kept:  # fmt: skip
        reply = summary
    elif kept:  # the free-text summary did not pass: the claims speak
        reply = from_claims
    else:
        missing = "".join(f"`{n}` is not seen in this window; " for n in ctx.unseen)
        reply = f"Not enough evidence in this window to answer; {missing}{_lead(ctx, insights)}."
    cited = {i for c in kept for i in c["evidence_ids"]}
    insight_ids = list(dict.fromkeys(ctx.owner[i] for i in ids if i in cited and i in ctx.owner))
    return {"answer": reply, "claims": kept, "insight_ids": insight_ids, "abstained": not kept, "llm": info}
