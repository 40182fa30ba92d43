"""``vanished_dependency``: an edge that disappeared (see ``dependency_change``)."""

from __future__ import annotations

from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.detectors.dependency_change import changes, finding
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind


class VanishedDependencyDetector:
    kind: Kind = "vanished_dependency"

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg = config.vanished_dependency

    def detect(self, ctx: DetectContext) -> list[Finding]:
        found = (finding(c, self.cfg.min_traces) for c in changes(ctx, self.cfg) if c.change == "vanished")
        return [f for f in found if f is not None]
