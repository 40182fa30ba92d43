"""The deterministic detectors, one module per ``kind`` (see ``docs/insights.md``).

Structural patterns (N+1, sequential calls, fan-out, retries, chattiness, cycles, the critical
path, error chains) are read from one bounded trace sample per run (``sample.py``); the others
are aggregate SQL over the window (slow queries, queue lag, dependency changes, drift,
single instances) or restate the anomaly room's open anomalies.
"""

from __future__ import annotations

from otel_ai.analysis.insights.detectors.anomaly import AnomalyDetector
from otel_ai.analysis.insights.detectors.chatty_dependency import ChattyDependencyDetector
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.detectors.critical_path_hotspot import CriticalPathDetector
from otel_ai.analysis.insights.detectors.dependency_cycle import DependencyCycleDetector
from otel_ai.analysis.insights.detectors.encoding_drift import EncodingDriftDetector
from otel_ai.analysis.insights.detectors.error_propagation import ErrorPropagationDetector
from otel_ai.analysis.insights.detectors.fan_out import FanOutDetector
from otel_ai.analysis.insights.detectors.n_plus_one import NPlusOneDetector
from otel_ai.analysis.insights.detectors.new_dependency import NewDependencyDetector
from otel_ai.analysis.insights.detectors.queue_lag import QueueLagDetector
from otel_ai.analysis.insights.detectors.retry_storm import RetryStormDetector
from otel_ai.analysis.insights.detectors.sdk_drift import SdkDriftDetector
from otel_ai.analysis.insights.detectors.sequential_calls import SequentialCallsDetector
from otel_ai.analysis.insights.detectors.single_point_of_failure import SinglePointOfFailureDetector
from otel_ai.analysis.insights.detectors.slow_query import SlowQueryDetector
from otel_ai.analysis.insights.detectors.vanished_dependency import VanishedDependencyDetector
from otel_ai.analysis.insights.model import Detector

ALL = (
    NPlusOneDetector,
    SequentialCallsDetector,
    FanOutDetector,
    RetryStormDetector,
    ChattyDependencyDetector,
    DependencyCycleDetector,
    CriticalPathDetector,
    ErrorPropagationDetector,
    SinglePointOfFailureDetector,
    SlowQueryDetector,
    QueueLagDetector,
    NewDependencyDetector,
    VanishedDependencyDetector,
    EncodingDriftDetector,
    SdkDriftDetector,
    AnomalyDetector,
)


def build_detectors(config: DetectorsConfig) -> list[Detector]:
    """Every enabled detector, configured, in ``KINDS`` order."""
    out: list[Detector] = []
    for cls in ALL:
        section = getattr(config, cls.kind)
        if section.enabled:
            out.append(cls(config))  # type: ignore[abstract]
    return out
