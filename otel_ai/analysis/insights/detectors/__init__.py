"""The deterministic detectors, one module per ``kind`` (see ``docs/insights.md``)."""

from __future__ import annotations

from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import Detector


def build_detectors(config: DetectorsConfig) -> list[Detector]:
    """Every enabled detector, configured. Filled in as detectors land."""
    return []
