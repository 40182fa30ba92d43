"""Severity and confidence, computed by code from a finding's :class:`Impact` — never by a model.

Severity: ``score = magnitude * sqrt(reach) * persistence``

- ``reach`` = share of the traffic through the touched entry points that shows the pattern
  (``affected_traces / total_traces``), multiplied by ``entry_share`` when the detector measured it; halved
  when the finding does not reach an entry point (not user-facing);
- ``magnitude`` = the largest of ``latency_ms / latency_budget_ms``, ``error_share /
  error_budget_share`` (each capped at 2) and 0.25, the weight of a structural finding (an
  anti-pattern costs something even where its latency is small);
- ``persistence`` = 0.5 … 1 as the finding's visible duration grows to ``persist_s``.

The square root keeps a pattern on a quarter of the traffic at half the weight of one on all of
it. ``score ≥ 1`` critical, ``≥ 0.5`` high, ``≥ 0.1`` medium, ``≥ 0.02`` low, else info; a finding
with no affected trace is info; ``Finding.severity_cap`` is a ceiling.

Confidence (0..1) measures evidence coverage: ``0.3 + 0.4·sample + 0.2·baselines + 0.1·examples``
where ``sample = min(1, affected_traces / confident_traces)``, ``baselines`` the share of evidence
items with a baseline, ``examples`` whether any item carries example trace ids. An abstained
narrative caps it at 0.5.
"""

from __future__ import annotations

import math
from typing import Literal

from otel_ai.analysis.insights.config import ScoringConfig
from otel_ai.analysis.insights.model import Finding, Impact

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}  # 0 = most severe
THRESHOLDS: tuple[tuple[float, Severity], ...] = (
    (1.0, "critical"),
    (0.5, "high"),
    (0.1, "medium"),
    (0.02, "low"),
)
STRUCTURAL_MAGNITUDE = 0.25
ABSTAINED_CONFIDENCE_CAP = 0.5


def reach(impact: Impact) -> float:
    share = impact.affected_traces / impact.total_traces if impact.total_traces > 0 else 0.0
    share = min(1.0, max(0.0, share))
    if impact.entry_share > 0:
        share *= min(1.0, impact.entry_share)
    return share if impact.at_entry else share * 0.5


def magnitude(impact: Impact, cfg: ScoringConfig) -> float:
    parts = [STRUCTURAL_MAGNITUDE]
    if impact.latency_ms is not None:
        parts.append(min(2.0, max(0.0, impact.latency_ms) / cfg.latency_budget_ms))
    if impact.error_share is not None:
        parts.append(min(2.0, max(0.0, impact.error_share) / cfg.error_budget_share))
    return max(parts)


def persistence(impact: Impact, cfg: ScoringConfig) -> float:
    return 0.5 + 0.5 * min(1.0, max(0.0, impact.duration_s) / cfg.persist_s)


def impact_score(impact: Impact, cfg: ScoringConfig) -> float:
    return magnitude(impact, cfg) * math.sqrt(reach(impact)) * persistence(impact, cfg)


def severity(finding: Finding, cfg: ScoringConfig) -> Severity:
    level: Severity = "info"
    if finding.impact.affected_traces > 0:
        score = impact_score(finding.impact, cfg)
        level = next((name for bound, name in THRESHOLDS if score >= bound), "info")
    cap = finding.severity_cap
    if cap is not None and RANK[level] < RANK[cap]:
        level = cap
    return level


def confidence(finding: Finding, cfg: ScoringConfig, *, abstained: bool = False) -> float:
    ev = finding.evidence
    sample = min(1.0, finding.impact.affected_traces / cfg.confident_traces)
    baselines = sum(1 for e in ev if e.baseline is not None) / len(ev) if ev else 0.0
    examples = 1.0 if any(e.trace_ids for e in ev) else 0.0
    value = 0.3 + 0.4 * sample + 0.2 * baselines + 0.1 * examples
    if not ev:
        value = min(value, 0.3)
    if abstained:
        value = min(value, ABSTAINED_CONFIDENCE_CAP)
    return round(min(1.0, max(0.0, value)), 2)
