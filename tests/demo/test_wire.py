"""The fast wire encoder writes exactly what the SDK's OTLP encoder writes (decoded and compared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai.demo import TimelineEvent, generate
from otel_ai.demo.wire import SpanEncoder


def _spans() -> list:
    mem = InMemorySpanExporter()
    t0 = datetime(2026, 11, 18, 12, tzinfo=UTC)
    # payment failures give error statuses and exception events; checkouts give links.
    timeline = [TimelineEvent(timedelta(0), timedelta(minutes=5), "payment-failure", "medium")]
    generate(t0, t0 + timedelta(minutes=5), span_exporter=mem, rate=5.0, seed=5, logs=False, metrics=False,
             timeline=timeline)  # fmt: skip
    return list(mem.get_finished_spans())


def _canonical(req: ExportTraceServiceRequest) -> list[tuple[str, str]]:
    """(resource, span) text pairs, order-independent across resource groups."""
    out = []
    for rs in req.resource_spans:
        res = str(rs.resource)
        for ss in rs.scope_spans:
            for sp in ss.spans:
                out.append((res + str(ss.scope), str(sp)))
    return sorted(out)


def test_wire_encoder_matches_the_sdk_encoder() -> None:
    spans = _spans()
    kinds = {s.kind for s in spans}
    assert len(kinds) >= 4 and any(s.events for s in spans) and any(s.links for s in spans)
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    sdk = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())
    assert len(_canonical(ours)) == len(spans)
    assert _canonical(ours) == _canonical(sdk)


def test_wire_encoder_handles_every_attribute_type() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    mem = InMemorySpanExporter()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    attrs = {
        "s": "x",
        "b": True,
        "f": False,
        "i": -7,
        "big": 2**62,
        "d": 1.5,
        "arr": ["a", "b"],
        "ints": [1, -2],
    }
    with tp.get_tracer("t").start_as_current_span("op", attributes=attrs):
        pass
    spans = list(mem.get_finished_spans())
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    sdk = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())
    assert _canonical(ours) == _canonical(sdk)


def test_wire_tracer_backfill_equals_the_sdk_path() -> None:
    """encoder="wire" (light spans + wire encoder) sends the same requests as SDK spans + SDK encoder."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Capture(SpanExporter):
        def __init__(self) -> None:
            self.encoder, self.requests = SpanEncoder(), []

        def export(self, spans):  # type: ignore[no-untyped-def]
            self.requests.append(ExportTraceServiceRequest.FromString(self.encoder.encode(spans)))
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    t0 = datetime(2026, 11, 18, 12, tzinfo=UTC)
    timeline = [TimelineEvent(timedelta(0), timedelta(minutes=5), "payment-failure", "medium")]
    kw = {"rate": 5.0, "seed": 9, "logs": False, "metrics": False, "timeline": timeline}
    mem = InMemorySpanExporter()
    generate(t0, t0 + timedelta(minutes=4), span_exporter=mem, **kw)  # type: ignore[arg-type]
    sdk = ExportTraceServiceRequest.FromString(encode_spans(mem.get_finished_spans()).SerializeToString())
    cap = Capture()
    generate(t0, t0 + timedelta(minutes=4), span_exporter=cap, encoder="wire", **kw)  # type: ignore[arg-type]
    ours = [pair for req in cap.requests for pair in _canonical(req)]
    assert len(ours) == len(mem.get_finished_spans()) > 1000
    assert sorted(ours) == _canonical(sdk)
