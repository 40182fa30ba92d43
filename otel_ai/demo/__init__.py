"""Astronomy-Shop-shaped demo traffic with fault scenarios, exported with the official OTel SDK.

Public API (the CLI ``otel-ai demo`` and the anomaly evaluations both use it)::

    from otel_ai.demo import generate, TimelineEvent, load_timeline, SCENARIOS
"""

from __future__ import annotations

from otel_ai.demo.export import PROTOCOLS, Protocol
from otel_ai.demo.runner import RunResult, generate, traffic_shape
from otel_ai.demo.scenarios import (
    SCENARIOS,
    Scenario,
    TimelineEvent,
    load_timeline,
    parse_duration,
    parse_timeline,
)
from otel_ai.demo.telemetry import SERVICES

__all__ = [
    "PROTOCOLS",
    "SCENARIOS",
    "SERVICES",
    "Protocol",
    "RunResult",
    "Scenario",
    "TimelineEvent",
    "generate",
    "load_timeline",
    "parse_duration",
    "parse_timeline",
    "traffic_shape",
]
