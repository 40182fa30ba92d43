"""Each pattern scenario of ``otel-ai demo`` plants, in the Astronomy-Shop traffic, what its
detector finds in the stored spans — and the same traffic without it does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai.analysis.insights.detectors import build_detectors
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import DetectContext, Window
from otel_ai.demo import SCENARIOS, TimelineEvent, generate
from otel_ai.model import Payload
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at

PATTERN_SCENARIOS = sorted(n for n, s in SCENARIOS.items() if s.insight)
MINUTES = 3
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture(scope="module")
def storage(chdb_path: Path) -> Iterator[Storage]:
    st = storage_at(f"chdb://{chdb_path}", unique_db("scen"))
    st.start()
    yield st
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def _run(st: Storage, scenario: str | None, start: datetime, seed: int) -> set[str]:
    """Shop traffic with the scenario on from the start, stored; the kinds the detectors report.

    Each run gets its own seed: the seed fixes the trace and span ids, and runs share a store."""
    exporter = InMemorySpanExporter()
    end = start + timedelta(minutes=MINUTES)
    timeline = [TimelineEvent(timedelta(0), timedelta(minutes=MINUTES), scenario)] if scenario else []
    generate(
        start, end, rate=4.0, seed=3, timeline=timeline, span_exporter=exporter, logs=False, diurnal=False
    )
    spans = exporter.get_finished_spans()
    body = encode_spans(spans).SerializeToString()
    TelemetryWriter(st).write([Payload("traces", "protobuf", "grpc", body, len(spans))])
    ctx = DetectContext(st, Window(start, end))
    return {
        f.kind for d in build_detectors(DetectorsConfig()) for f in d.detect(ctx) if f.severity_cap != "low"
    }


def test_every_pattern_scenario_names_a_kind() -> None:
    from otel_ai.analysis.insights.model import KINDS

    assert len(PATTERN_SCENARIOS) >= 8
    assert all(SCENARIOS[n].insight in KINDS for n in PATTERN_SCENARIOS)


@pytest.mark.parametrize("name", PATTERN_SCENARIOS, ids=PATTERN_SCENARIOS)
def test_scenario_plants_what_its_detector_finds(storage: Storage, name: str) -> None:
    slot = BASE - timedelta(minutes=10 * (1 + PATTERN_SCENARIOS.index(name)))
    kinds = _run(storage, name, slot, seed=10 + PATTERN_SCENARIOS.index(name))
    assert SCENARIOS[name].insight in kinds, kinds


def test_plain_shop_traffic_shows_none_of_them(storage: Storage) -> None:
    kinds = _run(storage, None, BASE, seed=3)
    assert not kinds & {SCENARIOS[n].insight for n in PATTERN_SCENARIOS}, kinds
