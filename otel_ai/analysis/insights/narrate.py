"""The LLM step: a finding's evidence → the manager → a grounded narrative on the record.

The evidence goes to the manager as ``data`` (quoted JSON, never instructions), with the kind's
versioned prompt and the ``architectural-insight`` schema (title, summary, findings ``[{statement,
evidence_ids}]``, recommendations). Every returned claim and recommendation passes
:func:`grounding.validate`; when no claim survives the record is ``abstained``. The chain always
ends with the ``rules`` provider, whose template narrative is the fallback. Narratives are cached
by (prompt version, route, evidence hash), in memory and on the stored record, so a finding that
has not changed is never narrated twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from otel_ai.analysis.insights import prompts
from otel_ai.analysis.insights.config import InsightsConfig
from otel_ai.analysis.insights.grounding import Scope, validate
from otel_ai.analysis.insights.model import Finding
from otel_ai.analysis.insights.scoring import ABSTAINED_CONFIDENCE_CAP
from otel_ai.errors import OtelAiError

log = logging.getLogger(__name__)
TASK = "architectural-insights"
SCHEMA = "architectural-insight"
MAX_CLAIMS = 8
Runner = Callable[[Coroutine[Any, Any, Any]], Any]


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, float):
        value = f"{value:.3g}"
    return f"{value} {unit}".strip() if unit else str(value)


def figure(e: dict[str, Any]) -> str:
    """An evidence item in one line: its description and figures."""
    text = str(e["description"])
    if e.get("observed") is not None:
        text += f": {_fmt(e['observed'], e.get('unit', ''))}"
        if e.get("baseline") is not None:
            text += f" (baseline {_fmt(e['baseline'], e.get('unit', ''))})"
    return text


def evidence_text(record: dict[str, Any]) -> str:
    return " \n".join(str(e.get("description", "")) for e in record.get("evidence") or [])


def allowed_entities(record: dict[str, Any], universe: Iterable[str]) -> set[str]:
    """The record's entities, its root cause, and known entities its evidence mentions."""
    allowed = {e["id"] for e in record.get("entities") or []}
    rc = record.get("root_cause")
    if rc:
        allowed.add(rc["entity"]["id"])
    text = evidence_text(record)
    allowed.update(name for name in universe if name and name in text)
    return allowed


def subject_of(record: dict[str, Any]) -> str:
    return str(record["entities"][0]["id"]) if record.get("entities") else str(record["kind"])


def mentioned(names: Iterable[str], text: str) -> frozenset[str]:
    """The names (or an edge's endpoint / an operation's parts) written in ``text``."""
    low = text.lower()
    out = set()
    for name in names:
        pieces = [p for p in name.replace("->", ":").split(":") if p]
        if name and (name.lower() in low or any(len(p) > 2 and p.lower() in low for p in pieces)):
            out.add(name)
    return frozenset(out)


def scopes(record: dict[str, Any], universe: Iterable[str]) -> dict[str, Scope]:
    """Per evidence item: the entities its description and figures name (of the insight's own and
    of the known universe), that wording and its figures (for the per-claim rule)."""
    rc = record.get("root_cause")
    names = {e["id"] for e in record.get("entities") or []} | ({rc["entity"]["id"]} if rc else set())
    names |= set(universe)
    return {
        e["id"]: Scope(
            mentioned(names, figure(e)),  # a figure may be text: a chain, a version
            figure(e),
            ((e.get("observed"), e.get("baseline"), str(e.get("unit") or "")),),
        )
        for e in record.get("evidence") or []
    }


def payload(record: dict[str, Any], facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The quoted data of one insight (its evidence first; ``rules`` reads ``evidence``)."""
    subject = record["entities"][0]["id"] if record.get("entities") else record["kind"]
    return {
        "subject": subject,
        "insight_id": record["id"],
        "kind": record["kind"],
        "title": record["title"],
        "severity": record["severity"],
        "entities": record["entities"],
        "root_cause": record.get("root_cause"),
        "facts": facts or {},
        "evidence": [
            {
                "id": e["id"],
                "kind": e["kind"],
                "entity": subject,
                "summary": figure(e),  # description with its figures (the rules template quotes it)
                "observed_value": e.get("observed"),
                "baseline_value": e.get("baseline"),
                "unit": e.get("unit", ""),
                "trace_ids": e.get("trace_ids", [])[:3],
            }
            for e in record.get("evidence") or []
        ],
        "suggested_recommendations": record.get("recommendations") or [],
    }


def template_claims(record: dict[str, Any]) -> list[dict[str, Any]]:
    subject = record["entities"][0]["id"] if record.get("entities") else record["kind"]
    out = []
    for e in (record.get("evidence") or [])[:MAX_CLAIMS]:
        out.append({"text": f"`{subject}`: {figure(e)}", "evidence_ids": [e["id"]]})
    return out


def template_summary(record: dict[str, Any]) -> str:
    ev = record.get("evidence") or []
    key = f" Key figure: {figure(ev[0])}." if ev else ""
    return f"{record['title']}.{key} (Template narrative: no language model wrote this.)"


def lead(record: dict[str, Any]) -> str:
    ev = (record.get("evidence") or [{}])[0]
    return f"strongest lead: {ev.get('description', record['title'])} [{ev.get('id', '-')}]"


class Narrator:
    """Narrates records with the manager; ``run`` drives a coroutine from synchronous code."""

    def __init__(self, llm: Any | None, config: InsightsConfig, run: Runner) -> None:
        self.llm, self.cfg, self._run = llm, config, run
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.stats = {"calls": 0, "cache_hits": 0, "template": 0, "errors": 0}

    # -- keys -------------------------------------------------------------------------------------
    def model_override(self) -> str | None:
        """``"rules"`` when the task's chain has no model but the embedded one and
        ``embedded_narrative`` is off; else ``None`` (the manager's routing decides)."""
        if self.llm is None or self.cfg.embedded_narrative:
            return None
        chain = self.llm.models()["tasks"].get(TASK, [])
        models = [g for g in chain if g != "rules"]
        return "rules" if "rules" in chain and all(g == "embedded" for g in models) else None

    def route(self) -> str:
        """Which models would answer (the task's chain and its deployments' models)."""
        if self.llm is None:
            return "none"
        models = self.llm.models()
        override = self.model_override()
        chain = [override] if override else models["tasks"].get(TASK, [])
        deps = [f"{d['group']}/{d['model']}" for g in chain for d in models["deployments"] if d["group"] == g]
        return f"{self.llm.config.prompt_version}|{'|'.join(deps)}"

    def key(self, tag: str, evidence_hash: str) -> str:
        return hashlib.sha256(f"{tag}\x00{self.route()}\x00{evidence_hash}".encode()).hexdigest()[:32]

    def _remember(self, key: str, narrative: dict[str, Any]) -> None:
        if self.cfg.cache_entries <= 0:
            return
        self._cache[key] = narrative
        self._cache.move_to_end(key)
        while len(self._cache) > self.cfg.cache_entries:
            self._cache.popitem(last=False)

    # -- narration ----------------------------------------------------------------------------------
    def narrate(
        self,
        record: dict[str, Any],
        finding: Finding | None,
        universe: Iterable[str],
        previous: dict[str, Any] | None = None,
        *,
        allow_call: bool = True,
    ) -> str:
        """Fill ``summary``, ``claims``, ``recommendations``, ``abstained`` and ``llm`` of ``record``;
        return where the narrative came from: ``calls``, ``cache_hits``, ``template`` or ``errors``."""
        prompt = prompts.for_kind(record["kind"])
        key = self.key(prompt.tag, record["evidence_hash"])
        record["narrative_key"] = ""  # set once a manager narrative is on the record
        cached = self._cache.get(key)
        if (
            cached is None
            and previous is not None
            and previous.get("narrative_key") == key
            and previous.get("llm")
        ):
            cached = {k: previous[k] for k in ("summary", "claims", "recommendations", "abstained", "llm")}
        if cached is not None:
            self.stats["cache_hits"] += 1
            llm = dict(cached["llm"] or {})
            llm.update(input_tokens=0, output_tokens=0, cost_usd=0.0, latency_ms=0.0, cached=True)
            self._apply(record, {**cached, "llm": llm})
            record["narrative_key"] = key
            return "cache_hits"
        if self.llm is None or not self.cfg.narrate or not allow_call:
            self.stats["template"] += 1
            self._apply(record, self._template(record, prompt.tag))
            return "template"
        universe = set(universe)
        try:
            resp = self._run(
                self.llm.generate(
                    prompt.text,
                    system=prompts.SYSTEM,
                    task=TASK,
                    schema_name=SCHEMA,
                    data=payload(record, dict(finding.facts) if finding else None),
                    temperature=0,
                    max_tokens=self.cfg.max_tokens,
                    model=self.model_override(),
                )
            )
        except OtelAiError as exc:  # every deployment failed (only with an explicit chain) or bad input
            self.stats["errors"] += 1
            log.warning("insights: narrative for %s failed: %s", record["kind"], exc.message)
            self._apply(record, self._template(record, prompt.tag))
            return "errors"
        self.stats["calls"] += 1
        narrative = self._grounded(record, resp, universe, prompt.tag)
        self._apply(record, narrative)
        record["narrative_key"] = key
        self._remember(key, narrative)
        return "calls"

    def _grounded(self, record: dict[str, Any], resp: Any, universe: set[str], tag: str) -> dict[str, Any]:
        out = resp.json if isinstance(resp.json, dict) else {}
        ids = [e["id"] for e in record.get("evidence") or []]
        allowed = allowed_entities(record, universe)
        text = evidence_text(record)
        sc, al = scopes(record, universe), {subject_of(record)}
        claims = [
            {"text": str(f.get("statement", "")), "evidence_ids": list(f.get("evidence_ids") or [])}
            for f in out.get("findings") or []
            if isinstance(f, dict)
        ]
        verdict = validate(claims, ids, allowed, universe, evidence_text=text, scopes=sc, always=al)
        kept = verdict.kept[:MAX_CLAIMS]
        model_recs = validate(
            [r for r in out.get("recommendations") or [] if isinstance(r, dict)], ids, allowed, universe,
            text_keys=("action", "rationale"), evidence_text=text, scopes=sc, always=al,
        ).kept  # fmt: skip
        code_recs = validate(
            record.get("recommendations") or [], ids, allowed, universe,
            text_keys=("action", "rationale"), evidence_text=text,
        ).kept  # fmt: skip
        # The rules provider has no better recommendation than the detector's own.
        recs = (code_recs or model_recs) if resp.provider == "rules" else (model_recs or code_recs)
        summary = str(out.get("summary") or "")
        # Free text cannot be checked claim by claim: a reply with any dropped claim loses it.
        summary_ok = bool(
            not verdict.dropped
            and summary and ids and validate([{"text": summary, "evidence_ids": ids}], ids, allowed, universe,
                                         evidence_text=text, scopes=sc, always=al).kept
        )  # fmt: skip
        abstained = not kept
        if resp.provider == "rules" and kept:  # the template's summary says nothing the title does not
            summary, summary_ok = template_summary(record), True
        if abstained:
            summary = f"Not enough grounded narrative for this finding; {lead(record)}."
        elif not summary_ok:
            summary = f"{record['title']}. {kept[0]['text']}"
        return {
            "summary": summary,
            "claims": kept,
            "recommendations": recs[:5],
            "abstained": abstained,
            "llm": llm_info(resp, tag),
        }

    def _template(self, record: dict[str, Any], tag: str) -> dict[str, Any]:
        claims = template_claims(record)
        return {
            "summary": template_summary(record) if claims else f"No evidence attached; {lead(record)}.",
            "claims": claims,
            "recommendations": record.get("recommendations") or [],
            "abstained": not claims,
            "llm": {
                "provider": "none", "model": "template", "input_tokens": 0, "output_tokens": 0,
                "cost_usd": 0.0, "latency_ms": 0.0, "cached": False, "prompt_version": tag,
            },
        }  # fmt: skip

    @staticmethod
    def _apply(record: dict[str, Any], narrative: dict[str, Any]) -> None:
        for k in ("summary", "claims", "recommendations", "abstained", "llm"):
            record[k] = narrative[k]
        if record["abstained"]:
            record["confidence"] = min(record["confidence"], ABSTAINED_CONFIDENCE_CAP)


def llm_info(resp: Any, tag: str) -> dict[str, Any]:
    return {
        "provider": resp.provider,
        "model": resp.model,
        "input_tokens": resp.usage.input_tokens,
        "output_tokens": resp.usage.output_tokens,
        "cost_usd": resp.cost_usd,
        "latency_ms": round(resp.latency_s * 1000, 3),
        "cached": bool(resp.cached),
        "prompt_version": tag,
    }
