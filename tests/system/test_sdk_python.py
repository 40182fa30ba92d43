"""End to end with the official OpenTelemetry Python SDK exporters against a running daemon.

gRPC, HTTP/protobuf and HTTP/JSON exporters for traces, metrics and logs; spans are read back
through ``GET /api/v1/traces/{id}``; metrics and logs are checked in their tables. An exporter's
``export`` returning SUCCESS means the daemon acked, which it does only after the insert (or the
spool), so nothing here waits or polls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as JsonLogExporter
from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter as JsonMetricExporter
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonSpanExporter
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_ai.testing.daemons import InProcessDaemon, daemon_config


@pytest.fixture(scope="module")
def daemon(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    cfg, ep = daemon_config(
        chdb_path, tmp=tmp_path_factory.mktemp("e2e"), extra={"pipeline.batch_timeout_ms": 20}
    )
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


# (name, expected encoding, expected transport, factory(daemon) → exporter)
TRACE_EXPORTERS: list[tuple[str, str, str, Callable[[InProcessDaemon], Any]]] = [
    ("grpc", "protobuf", "grpc", lambda d: GrpcSpanExporter(endpoint=d.ep.grpc, insecure=True)),
    (
        "grpc-gzip",
        "protobuf",
        "grpc",
        lambda d: GrpcSpanExporter(
            endpoint=d.ep.grpc, insecure=True, compression=__import__("grpc").Compression.Gzip
        ),
    ),
    ("http-protobuf", "protobuf", "http", lambda d: HttpSpanExporter(endpoint=d.ep.http_url + "/v1/traces")),
    (
        "http-protobuf-gzip",
        "protobuf",
        "http",
        lambda d: HttpSpanExporter(endpoint=d.ep.http_url + "/v1/traces", compression=Compression.Gzip),
    ),
    ("http-json", "json", "http", lambda d: JsonSpanExporter(endpoint=d.ep.http_url + "/v1/traces")),
]


def _service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    ("name", "encoding", "transport", "make"), TRACE_EXPORTERS, ids=[t[0] for t in TRACE_EXPORTERS]
)
def test_traces_round_trip(
    daemon: InProcessDaemon, name: str, encoding: str, transport: str, make: Callable[[InProcessDaemon], Any]
) -> None:
    service = _service()
    tp = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
    tp.add_span_processor(SimpleSpanProcessor(make(daemon)))
    tracer = tp.get_tracer("e2e", "1.2.3")
    with tracer.start_as_current_span(
        "GET /checkout",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.response.status_code": 500},
    ) as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        root_id = format(root.get_span_context().span_id, "016x")
        with tracer.start_as_current_span(
            "SELECT orders", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}
        ) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "deadlock"))
    tp.shutdown()
    daemon.wait_inserted()  # acked by the write-ahead log (the default), inserted a batch later

    r = daemon.get(f"/api/v1/traces/{trace_id}")
    assert r.status_code == 200, r.text
    spans = {s["name"]: s for s in r.json()["spans"]}
    assert set(spans) == {"GET /checkout", "SELECT orders"}
    for s in spans.values():
        assert (s["encoding"], s["transport"], s["service_name"]) == (encoding, transport, service)
    root_s, child_s = spans["GET /checkout"], spans["SELECT orders"]
    assert root_s["kind"] == "Server" and root_s["parent_span_id"] == "" and root_s["span_id"] == root_id
    assert root_s["attributes"] == {"http.request.method": "GET", "http.response.status_code": "500"}
    assert child_s["parent_span_id"] == root_id and child_s["kind"] == "Client"
    assert (child_s["status_code"], child_s["status_message"]) == ("Error", "deadlock")
    assert child_s["events"][0]["name"] == "retry" and child_s["events"][0]["attributes"] == {"attempt": "2"}
    assert child_s["scope_name"] == "e2e" and child_s["scope_version"] == "1.2.3"


METRIC_EXPORTERS = [
    ("grpc", "protobuf", "grpc", lambda d: GrpcMetricExporter(endpoint=d.ep.grpc, insecure=True)),
    (
        "http-protobuf",
        "protobuf",
        "http",
        lambda d: HttpMetricExporter(endpoint=d.ep.http_url + "/v1/metrics"),
    ),
    ("http-json", "json", "http", lambda d: JsonMetricExporter(endpoint=d.ep.http_url + "/v1/metrics")),
]


@pytest.mark.parametrize(
    ("name", "encoding", "transport", "make"), METRIC_EXPORTERS, ids=[t[0] for t in METRIC_EXPORTERS]
)
def test_metrics_round_trip(
    daemon: InProcessDaemon, name: str, encoding: str, transport: str, make: Callable[[InProcessDaemon], Any]
) -> None:
    service = _service()
    reader = PeriodicExportingMetricReader(make(daemon), export_interval_millis=3_600_000)
    mp = MeterProvider(resource=Resource.create({"service.name": service}), metric_readers=[reader])
    meter = mp.get_meter("e2e")
    meter.create_counter("orders_total").add(7, {"region": "eu"})
    meter.create_histogram("latency_ms").record(12.5)
    meter.create_up_down_counter("inflight").add(3)
    mp.shutdown()  # one final collect + export (a force_flush before it would export twice)
    daemon.wait_inserted()  # acked by the write-ahead log (the default), inserted a batch later

    st = daemon.daemon.storage
    q = "SELECT MetricName, Value, IngestEncoding, IngestTransport FROM {db:Identifier}.otel_metrics_sum WHERE ServiceName = {s:String} ORDER BY MetricName"
    rows = st.query(q, {"db": st.database, "s": service})
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("inflight", 3.0, encoding, transport),
        ("orders_total", 7.0, encoding, transport),
    ]
    q = "SELECT Count, Sum, IngestEncoding FROM {db:Identifier}.otel_metrics_histogram WHERE ServiceName = {s:String} AND MetricName = 'latency_ms'"
    assert st.query(q, {"db": st.database, "s": service}) == [(1, 12.5, encoding)]


LOG_EXPORTERS = [
    ("grpc", "protobuf", "grpc", lambda d: GrpcLogExporter(endpoint=d.ep.grpc, insecure=True)),
    ("http-protobuf", "protobuf", "http", lambda d: HttpLogExporter(endpoint=d.ep.http_url + "/v1/logs")),
    ("http-json", "json", "http", lambda d: JsonLogExporter(endpoint=d.ep.http_url + "/v1/logs")),
]


@pytest.mark.parametrize(
    ("name", "encoding", "transport", "make"), LOG_EXPORTERS, ids=[t[0] for t in LOG_EXPORTERS]
)
def test_logs_round_trip(
    daemon: InProcessDaemon, name: str, encoding: str, transport: str, make: Callable[[InProcessDaemon], Any]
) -> None:
    service = _service()
    lp = LoggerProvider(resource=Resource.create({"service.name": service}))
    lp.add_log_record_processor(SimpleLogRecordProcessor(make(daemon)))
    logger = lp.get_logger("e2e")
    logger.emit(
        LogRecord(
            body="payment failed",
            severity_text="ERROR",
            severity_number=SeverityNumber.ERROR,
            attributes={"order.id": 42},
        )
    )
    logger.emit(LogRecord(body="payment retried", severity_text="INFO", severity_number=SeverityNumber.INFO))
    lp.shutdown()
    daemon.wait_inserted()

    st = daemon.daemon.storage
    q = (
        "SELECT Body, SeverityText, LogAttributes, IngestEncoding, IngestTransport FROM {db:Identifier}.otel_logs"
        " WHERE ServiceName = {s:String} ORDER BY Body"
    )
    rows = st.query(q, {"db": st.database, "s": service})
    assert [tuple(r) for r in rows] == [
        ("payment failed", "ERROR", {"order.id": "42"}, encoding, transport),
        ("payment retried", "INFO", {}, encoding, transport),
    ]


def test_status_counts_by_signal_transport_encoding(daemon: InProcessDaemon) -> None:
    service = _service()
    for make in (TRACE_EXPORTERS[0][3], TRACE_EXPORTERS[2][3], TRACE_EXPORTERS[4][3]):
        tp = TracerProvider(resource=Resource.create({"service.name": service}))
        tp.add_span_processor(SimpleSpanProcessor(make(daemon)))
        with tp.get_tracer("s").start_as_current_span("x"):
            pass
        tp.shutdown()
    body = daemon.get("/api/v1/status").json()
    counters = body["receivers"]["counters"]["traces"]
    for transport, encoding in (("grpc", "protobuf"), ("http", "protobuf"), ("http", "json")):
        c = counters[transport][encoding]
        assert c["requests"] >= 1 and c["items_accepted"] >= 1 and c["items_received"] >= c["items_accepted"]
    assert body["receivers"]["endpoints"] == {"grpc": daemon.ep.grpc, "http": daemon.ep.http}
    pipe = body["pipeline"]
    assert (
        pipe["inserted_items"] >= 3
        and pipe["queue"]["capacity_items"] == 400_000
        and pipe["spool"]["bytes"] == 0
    )
    metrics = daemon.get("/metrics").text
    assert (
        'otel_ai_receiver_items_total{encoding="json",outcome="accepted",signal="traces",transport="http"}'
        in metrics
    )
    assert "otel_ai_pipeline_queue_items 0.0" in metrics and "otel_ai_writer_insert_seconds_count" in metrics
