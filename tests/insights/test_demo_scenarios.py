"""Each pattern scenario of ``otel-ai demo`` plants, in the Astronomy-Shop traffic, what its
detector finds in the stored spans — and the same traffic without it does not."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai.analysis.insights.config import ScoringConfig
from otel_ai.analysis.insights.detectors import build_detectors
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.detectors.encoding_drift import EncodingDriftDetector
from otel_ai.analysis.insights.model import DetectContext, Finding, Window
from otel_ai.analysis.insights.scoring import RANK, severity
from otel_ai.demo import SCENARIOS, TimelineEvent, generate
from otel_ai.model import Payload
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at

PATTERN_SCENARIOS = sorted(n for n, s in SCENARIOS.items() if s.insight)
# The anomaly scenario needs a trained model first: tests/insights/test_demo_anomaly.py.
SPAN_SCENARIOS = [n for n in PATTERN_SCENARIOS if SCENARIOS[n].history_s is None]
MINUTES = 3
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture(scope="module")
def storage(chdb_path: Path) -> Iterator[Storage]:
    st = storage_at(f"chdb://{chdb_path}", unique_db("scen"))
    st.start()
    yield st
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


# The entity each scenario's finding must name (default: the scenario's root cause).
ENTITY = {"queue-lag": "kafka/orders", "new-dependency": "frontend->api.reviews.example",
          "vanished-dependency": "frontend->api.reviews.example", "chatty-dependency": "frontend->currency"}  # fmt: skip


def _payloads(spans: Sequence[ReadableSpan], json_instances: set[str]) -> list[Payload]:
    """What the receivers hand the writer: protobuf over gRPC, and for the instances that export
    OTLP/JSON a JSON-over-HTTP request (stored transcoded, as the HTTP receiver does)."""
    out = []
    for encoding in ("protobuf", "json"):
        part = [s for s in spans if (s.resource.attributes.get("service.instance.id") in json_instances)
                == (encoding == "json")]  # fmt: skip
        if part:
            body = encode_spans(part).SerializeToString()
            transport = "http" if encoding == "json" else "grpc"
            wire = "protobuf" if encoding == "json" else None
            out.append(Payload("traces", encoding, transport, body, len(part), wire=wire))  # type: ignore[arg-type]
    return out


def _run(st: Storage, scenario: str | None, start: datetime, seed: int) -> list[Finding]:
    """Shop traffic with the scenario on from the start, stored; the findings above ``low``.

    Each run gets its own seed: the seed fixes the trace and span ids, and runs share a store."""
    exporter = InMemorySpanExporter()
    end = start + timedelta(minutes=MINUTES)
    timeline = [TimelineEvent(timedelta(0), timedelta(minutes=MINUTES), scenario)] if scenario else []
    res = generate(
        start, end, rate=4.0, seed=seed, timeline=timeline, span_exporter=exporter, logs=False, diurnal=False
    )
    TelemetryWriter(st).write(_payloads(exporter.get_finished_spans(), res.json_instances))
    ctx = DetectContext(st, Window(start, end))
    return [f for d in build_detectors(DetectorsConfig()) for f in d.detect(ctx) if f.severity_cap != "low"]


def test_every_pattern_scenario_names_a_kind() -> None:
    from otel_ai.analysis.insights.model import KINDS

    assert len(PATTERN_SCENARIOS) >= 8
    assert all(SCENARIOS[n].insight in KINDS for n in PATTERN_SCENARIOS)


@pytest.mark.parametrize("name", SPAN_SCENARIOS, ids=SPAN_SCENARIOS)
def test_scenario_plants_what_its_detector_finds(storage: Storage, name: str) -> None:
    slot = BASE - timedelta(minutes=10 * (1 + PATTERN_SCENARIOS.index(name)))
    found = _run(storage, name, slot, seed=10 + PATTERN_SCENARIOS.index(name))
    kind, entity = SCENARIOS[name].insight, ENTITY.get(name, SCENARIOS[name].root_cause)
    mine = [f for f in found if f.kind == kind]
    assert mine, sorted({f.kind for f in found})
    assert any(entity in {e.id for e in f.entities} for f in mine), [[e.id for e in f.entities] for f in mine]


def test_plain_shop_traffic_shows_none_of_them(storage: Storage) -> None:
    """No pattern kind, and no finding that would reach medium severity: a clean demo is quiet."""
    found = _run(storage, None, BASE, seed=3)
    assert not {f.kind for f in found} & {SCENARIOS[n].insight for n in PATTERN_SCENARIOS}, found
    scoring = ScoringConfig()
    assert all(RANK[severity(f, scoring)] > RANK["medium"] for f in found), [(f.kind, f.title) for f in found]


def test_encoding_drift_really_sends_otlp_json_for_the_odd_instance(make_daemon: Any) -> None:
    """Through the real exporters and receivers: the run sends gRPC protobuf, the odd
    product-catalog instance OTLP/JSON over HTTP, and the daemon records both encodings."""
    d = make_daemon()
    start = BASE - timedelta(hours=1)
    end = start + timedelta(minutes=2)
    timeline = [TimelineEvent(timedelta(0), timedelta(minutes=2), "encoding-drift")]
    res = generate(start, end, endpoint=f"http://{d.ep.grpc}", protocol="grpc", json_endpoint=d.ep.http_url,
                   rate=4.0, seed=41, timeline=timeline, logs=False, diurnal=False)  # fmt: skip
    assert res.exported_spans == res.spans > 0 and len(res.json_instances) == 1
    d.wait_inserted()
    st = d.daemon.storage
    found = EncodingDriftDetector(DetectorsConfig()).detect(DetectContext(st, Window(start, end)))
    assert [f.key for f in found] == ["product-catalog"], [f.title for f in found]
    assert set(found[0].facts["variants"].split(", ")) == {"protobuf/grpc", "json/http"}
    majority = {"protobuf/grpc": "grpc", "json/http": "http/json"}[found[0].facts["majority"]]
    assert f"OTEL_EXPORTER_OTLP_PROTOCOL={majority}," in found[0].recommendations[0].action
    json_ids = {str(e.description) for e in found[0].evidence if "json/http" in e.id}
    assert any(next(iter(res.json_instances))[:36] in text for text in json_ids), json_ids
