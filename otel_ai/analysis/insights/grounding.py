"""The grounding rule shared by insights, answers and report summaries.

A claim (or recommendation) is kept only when it cites at least one evidence id, every id it
cites is known, and every entity it names is one the evidence is about. Telemetry text is data:
nothing in a claim is executed or followed, it is only checked against the evidence.

"Names" are found three ways: any entity of the known ``universe`` (every service and peer the
store knows) written in the text; anything written in backticks (the prompts ask models to
quote entity names that way); and bare tokens shaped like an entity id even when nobody knows
them — an edge ``a->b``, a ``snake_case`` identifier, a hyphenated name ending in a component
word (``billing-service``, ``user-db``), a host name (``api.example.com``). A name is fine when
it is one of ``allowed_entities`` (or a part of one) or appears verbatim in ``evidence_text``
(e.g. a table named inside a quoted statement).

With ``scopes`` (evidence id → :class:`Scope`) the rule is per claim: the names a claim may use
are those of the evidence items it cites (plus ``always``, e.g. the insight's subject), not of
the whole insight, and every number it states must be a figure of those items
(:mod:`figures`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_ai.analysis.insights import figures
from otel_ai.analysis.insights.model import KINDS

# Names that look like entity ids: service-like tokens (letters, digits, '-', '_', '.', '/')
# and edges written "a->b". Only names from the known universe (every entity the store knows)
# are checked, so ordinary words never count as invented names.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/:]*(?:->[A-Za-z0-9][A-Za-z0-9_.\-/:]*)?")
_QUOTED = re.compile(r"`([^`\n]{1,160})`")
_COMPONENT_WORDS = (
    "service", "svc", "api", "db", "database", "server", "worker", "cache", "queue", "gateway",
    "backend", "proxy", "store", "broker", "topic", "cluster", "app",
)  # fmt: skip
_SHAPED = [
    re.compile(r"[A-Za-z0-9][\w.\-/:]*->[A-Za-z0-9][\w.\-/:]*"),  # an edge
    re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"),  # snake_case identifier
    re.compile(r"\b[a-z][a-z0-9]*(?:-[a-z0-9]+)*-(?:" + "|".join(_COMPONENT_WORDS) + r")s?\b", re.I),
    re.compile(
        r"\b[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:com|net|org|io|dev|cloud|internal|local|svc)\b", re.I
    ),
]
_VOCABULARY = frozenset(KINDS)  # the insight kinds are words of the domain, not entities
_NUMBERISH = re.compile(r"^[\d.,%:\s+\-x\u00d7/]*(?:ms|s|us|µs|ns|m|h|%|x|rps|req/s)?$", re.I)


@dataclass(frozen=True)
class Scope:
    """What one evidence item supports: the entities it is about, its own wording, its figures."""

    names: frozenset[str]
    text: str = ""
    figures: tuple[figures.Figure, ...] = ()


@dataclass(frozen=True)
class Verdict:
    kept: list[dict[str, Any]]
    dropped: list[tuple[dict[str, Any], str]]  # (item, reason)


def _names_in(text: str) -> set[str]:
    names: set[str] = set()
    for token in _TOKEN.findall(text):
        token = token.rstrip(".:,;")
        names.add(token)
        names.update(token.split("->"))
        names.update(part for part in token.split(":") if part)
    return names


def _shaped_names(text: str) -> set[str]:
    """Names written in backticks or shaped like entity ids, whether known or not."""
    names = {m.group(1).strip() for m in _QUOTED.finditer(text)}
    bare = _QUOTED.sub(" ", text)
    for pattern in _SHAPED:
        names.update(m.group(0).rstrip(".:,;") for m in pattern.finditer(bare))
    return {n for n in names if n and not _NUMBERISH.match(n)}


def _unknown_name(text: str, allowed_lower: set[str], evidence_lower: str) -> str | None:
    for name in sorted(_shaped_names(text)):
        low = name.lower()
        if low in _VOCABULARY or low in allowed_lower or low in evidence_lower:
            continue
        parts = [p for p in re.split(r"->|:", low) if p]
        if parts and all(p.strip() in allowed_lower or p.strip() in evidence_lower for p in parts):
            continue
        return name
    return None


def _expand(names: Iterable[str]) -> set[str]:
    out = set(names)
    for entity in list(out):
        out.update(entity.split("->"))
        out.update(part for part in entity.split(":") if part)
    return out


def _scoped(
    text: str, cited: Sequence[str], scopes: Mapping[str, Scope], always: set[str], others: set[str]
) -> str | None:
    """Why a claim fails the per-claim rule (names and figures of what it cites), else ``None``."""
    mine = [scopes[c] for c in cited if c in scopes]
    allowed = _expand(always.union(*(s.names for s in mine)))
    own_text = " \n".join(s.text for s in mine)
    outside = sorted(_names_in(text) & (others - allowed))
    if outside:
        return f"names {outside[0]!r}, which the cited evidence is not about"
    unknown = _unknown_name(text, {a.lower() for a in allowed}, own_text.lower())
    if unknown is not None:
        return f"names {unknown!r}, which the cited evidence is not about"
    number = figures.unsupported(text, [f for s in mine for f in s.figures], own_text)
    if number is not None:
        return f"states {number!r}, which no cited evidence shows"
    return None


def validate(
    items: Sequence[Mapping[str, Any]],
    evidence_ids: Iterable[str],
    allowed_entities: Iterable[str],
    universe: Iterable[str] = (),
    *,
    text_keys: tuple[str, ...] = ("text",),
    evidence_text: str = "",
    scopes: Mapping[str, Scope] | None = None,
    always: Iterable[str] = (),
) -> Verdict:
    """Split ``items`` (claims ``{"text", "evidence_ids"}`` or recommendations ``{"action",
    "rationale", "evidence_ids"}``) into kept and dropped ones.

    ``universe`` holds every entity name the store knows (services, virtual nodes); a claim
    naming one of them that is not in ``allowed_entities`` is dropped as an invented subject, and
    so is one naming an unknown entity-shaped name (see the module docstring). ``evidence_text``
    is the evidence's own wording (descriptions), in which quoted names are fine. ``scopes``
    adds the per-claim rule of the module docstring.
    """
    known_ids = set(evidence_ids)
    allowed = _expand(allowed_entities)
    others = _expand(universe) | allowed
    always_set = set(always)
    foreign = set(universe) - allowed
    allowed_lower = {a.lower() for a in allowed}
    evidence_lower = evidence_text.lower()
    kept: list[dict[str, Any]] = []
    dropped: list[tuple[dict[str, Any], str]] = []
    for item in items:
        cited = item.get("evidence_ids")
        if not isinstance(cited, list | tuple) or not cited:
            dropped.append((dict(item), "cites no evidence"))
            continue
        unknown = [c for c in cited if not isinstance(c, str) or c not in known_ids]
        if unknown:
            dropped.append((dict(item), f"cites unknown evidence {unknown[0]!r}"))
            continue
        text = " ".join(str(item.get(k, "")) for k in text_keys)
        invented = sorted(_names_in(text) & foreign)
        if invented:
            dropped.append((dict(item), f"names {invented[0]!r}, which the evidence is not about"))
            continue
        unknown_name = _unknown_name(text, allowed_lower, evidence_lower)
        if unknown_name is not None:
            dropped.append((dict(item), f"names {unknown_name!r}, which is not in the evidence"))
            continue
        reason = _scoped(text, cited, scopes, always_set, others) if scopes is not None else None
        if reason is not None:
            dropped.append((dict(item), reason))
            continue
        kept.append(dict(item))
    return Verdict(kept, dropped)
