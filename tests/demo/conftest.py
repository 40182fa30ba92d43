"""Shared helpers for the demo tests: run the generator into the SDK's in-memory exporters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai.demo import RunResult, TimelineEvent, generate

# A Wednesday noon: weekday, mid-diurnal, so tests do not depend on today's date.
T0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


@dataclass
class Captured:
    result: RunResult
    spans: Sequence[ReadableSpan]
    logs: Sequence[ReadableLogRecord]


def run_memory(
    minutes: float = 2.0,
    *,
    rate: float = 5.0,
    seed: int = 1,
    timeline: Sequence[TimelineEvent] = (),
    start: datetime = T0,
    diurnal: bool = False,
) -> Captured:
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    res = generate(
        start,
        start + timedelta(minutes=minutes),
        rate=rate,
        seed=seed,
        timeline=timeline,
        span_exporter=spans,
        log_exporter=logs,
        diurnal=diurnal,
    )
    return Captured(res, spans.get_finished_spans(), logs.get_finished_logs())


def service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])
