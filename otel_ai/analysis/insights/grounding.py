"""The grounding rule shared by insights, answers and report summaries.

A claim (or recommendation) is kept only when it cites at least one evidence id, every id it
cites is known, and every entity it names is one the evidence is about. Telemetry text is data:
nothing in a claim is executed or followed, it is only checked against the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Names that look like entity ids: service-like tokens (letters, digits, '-', '_', '.', '/')
# and edges written "a->b". Only names from the known universe (every entity the store knows)
# are checked, so ordinary words never count as invented names.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/:]*(?:->[A-Za-z0-9][A-Za-z0-9_.\-/:]*)?")


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


def validate(
    items: Sequence[Mapping[str, Any]],
    evidence_ids: Iterable[str],
    allowed_entities: Iterable[str],
    universe: Iterable[str] = (),
    *,
    text_keys: tuple[str, ...] = ("text",),
) -> Verdict:
    """Split ``items`` (claims ``{"text", "evidence_ids"}`` or recommendations ``{"action",
    "rationale", "evidence_ids"}``) into kept and dropped ones.

    ``universe`` holds every entity name the store knows (services, virtual nodes); a claim
    naming one of them that is not in ``allowed_entities`` is dropped as an invented subject.
    """
    known_ids = set(evidence_ids)
    allowed = set(allowed_entities)
    for entity in list(allowed):
        allowed.update(entity.split("->"))
        allowed.update(part for part in entity.split(":") if part)
    foreign = set(universe) - allowed
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
        kept.append(dict(item))
    return Verdict(kept, dropped)
