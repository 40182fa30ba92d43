"""The generator's traces look like the OpenTelemetry demo's: services, edges, semconv, kinds, links."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_ai.demo import SERVICES, generate, traffic_shape
from otel_ai.demo.runner import NS
from tests.demo.conftest import T0, Captured, run_memory, service


@pytest.fixture(scope="module")
def cap() -> Captured:
    return run_memory(3.0, rate=8.0, seed=7)


def edges(spans: Captured) -> set[tuple[str, str]]:
    by_id = {s.context.span_id: s for s in spans.spans}
    out = set()
    for s in spans.spans:
        parent = by_id.get(s.parent.span_id) if s.parent else None
        if parent is not None and service(parent) != service(s):
            out.add((service(parent), service(s)))
    return out


def test_every_demo_service_emits_spans(cap: Captured) -> None:
    assert {service(s) for s in cap.spans} == set(SERVICES)
    assert cap.result.spans == len(cap.spans) == cap.result.exported_spans
    assert cap.result.dropped_spans == 0


def test_edges_follow_the_astronomy_shop_topology(cap: Captured) -> None:
    expected = {
        ("frontend-proxy", "frontend"), ("frontend-proxy", "image-provider"), ("frontend", "ad"),
        ("frontend", "cart"), ("frontend", "checkout"), ("frontend", "currency"), ("frontend", "product-catalog"),
        ("frontend", "recommendation"), ("frontend", "shipping"), ("checkout", "cart"), ("checkout", "payment"),
        ("checkout", "shipping"), ("checkout", "email"), ("checkout", "currency"), ("checkout", "product-catalog"),
        ("checkout", "accounting"), ("shipping", "quote"), ("recommendation", "product-catalog"),
        ("payment", "flagd"),
    }  # fmt: skip
    assert expected <= edges(cap)
    # fraud-detection is not a child of anything: it starts a new trace linked to the producer.
    assert not {e for e in edges(cap) if e[1] == "fraud-detection"}


def test_resource_and_semconv_attributes(cap: Captured) -> None:
    s = next(s for s in cap.spans if service(s) == "cart" and s.kind == SpanKind.SERVER)
    res = s.resource.attributes
    assert res["service.version"] == "2.1.3" and res["deployment.environment.name"] == "demo"
    assert res["telemetry.sdk.language"] == "dotnet" and res["service.namespace"] == "opentelemetry-demo"
    assert s.attributes is not None
    assert s.attributes["rpc.system"] == "grpc" and s.attributes["rpc.service"] == "oteldemo.CartService"
    db = next(s for s in cap.spans if s.attributes and s.attributes.get("db.system") == "redis")
    assert db.kind == SpanKind.CLIENT and db.attributes is not None
    assert db.attributes["server.address"] == "valkey-cart"
    http = next(s for s in cap.spans if service(s) == "frontend" and s.kind == SpanKind.SERVER)
    assert http.attributes is not None and {
        "http.request.method",
        "http.route",
        "http.response.status_code",
    } <= set(http.attributes)
    kinds = Counter(s.kind for s in cap.spans)
    assert {SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER} <= set(kinds)


def test_consumers_link_to_the_producer(cap: Captured) -> None:
    producers = {s.context.span_id: s for s in cap.spans if s.kind == SpanKind.PRODUCER}
    assert producers
    consumers = [s for s in cap.spans if s.kind == SpanKind.CONSUMER]
    assert Counter(service(c) for c in consumers) == {
        "accounting": len(producers),
        "fraud-detection": len(producers),
    }
    for c in consumers:
        (link,) = c.links
        p = producers[link.context.span_id]
        assert p.attributes is not None and p.attributes["messaging.system"] == "kafka"
        assert c.start_time is not None and p.end_time is not None and c.start_time >= p.end_time
        if service(c) == "accounting":
            assert c.parent is not None and c.parent.span_id == p.context.span_id
        else:
            assert c.parent is None and c.context.trace_id != p.context.trace_id


def test_errors_carry_exception_events_and_error_logs() -> None:
    from otel_ai.demo import TimelineEvent

    cap = run_memory(
        2.0, rate=8.0, seed=3, timeline=[TimelineEvent(timedelta(0), timedelta(hours=1), "ad-failure")]
    )
    failed = [s for s in cap.spans if service(s) == "ad" and s.status.status_code == StatusCode.ERROR]
    assert failed
    ev = failed[0].events[0]
    assert ev.name == "exception" and ev.attributes is not None and "exception.message" in ev.attributes
    errors = [r for r in cap.logs if r.log_record.severity_text == "ERROR"]
    assert errors and errors[0].log_record.trace_id in {s.context.trace_id for s in failed}


def test_timestamps_are_simulated_and_inside_the_window(cap: Captured) -> None:
    starts = [s.start_time for s in cap.spans if s.start_time is not None]
    lo = int(T0.timestamp() * NS)
    assert min(starts) >= lo and max(starts) < lo + int(3.5 * 60 * NS)
    assert all(
        s.end_time is not None and s.start_time is not None and s.end_time >= s.start_time for s in cap.spans
    )


def test_same_seed_same_traffic_different_seed_different() -> None:
    a, b, c = (run_memory(0.5, rate=5.0, seed=s) for s in (11, 11, 12))
    ids = [
        [(s.context.trace_id, s.context.span_id, s.name, s.start_time) for s in x.spans] for x in (a, b, c)
    ]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_diurnal_shape_changes_the_rate() -> None:
    night = T0.replace(hour=3)
    peak = T0.replace(hour=15)
    assert traffic_shape(int(peak.timestamp() * NS), 0) > 2 * traffic_shape(int(night.timestamp() * NS), 0)
    n_night = run_memory(2.0, rate=5.0, start=night, diurnal=True).result.requests
    n_peak = run_memory(2.0, rate=5.0, start=peak, diurnal=True).result.requests
    assert n_peak > 2 * n_night


def test_end_is_required_for_backfill() -> None:
    with pytest.raises(ValueError, match="end is required"):
        generate(T0, None, realtime=False)
