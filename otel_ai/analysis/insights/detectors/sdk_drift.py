"""``sdk_drift``: one service whose instances run different OpenTelemetry SDKs (language, name or
version from the ``telemetry.sdk.*`` resource attributes)."""

from __future__ import annotations

from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.detectors.drift import drifts, finding
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

ACTION = (
    "Upgrade every {service} instance to the same OpenTelemetry SDK ({major}); instances on "
    "different SDK versions name attributes differently and skew per-instance comparisons"
)


class SdkDriftDetector:
    kind: Kind = "sdk_drift"

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg = config.sdk_drift

    def detect(self, ctx: DetectContext) -> list[Finding]:
        found = (
            finding("sdk_drift", svc, rows, "SDK", ACTION, self.cfg.min_traces)
            for svc, rows in drifts(ctx, "sdk", self.cfg)
        )
        return [f for f in found if f is not None]
