"""Request bodies at and past the ingest limits, shared by the hardening tests.

Each builder takes a unique tag (a trace id or a service name) so a test can count exactly the
rows its request produced.
"""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

DAY_NS = 86_400 * 10**9
YEAR_2300_NS = 10_413_792_000 * 10**9


def now_ns() -> int:
    return time.time_ns() - 10**9


def traces_pb(tid: bytes, starts: list[int], *, tweak: Any = None, resource_attr: str = "") -> bytes:
    """One span per start time (span ids 1..n) under one resource."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "harden"
    if resource_attr:
        rs.resource.attributes.add(key="big").value.string_value = resource_attr
    ss = rs.scope_spans.add()
    for i, start in enumerate(starts, 1):
        sp = ss.spans.add(trace_id=tid, span_id=i.to_bytes(8, "big"), name=f"s{i}")
        sp.start_time_unix_nano = start
        sp.end_time_unix_nano = start + 1000 if start < 2**64 - 1000 else start
    if tweak is not None:
        tweak(ss.spans)
    return req.SerializeToString()


def span_json(tid: str, sid: str, start: str | int, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": tid,
        "spanId": sid,
        "name": "j",
        "startTimeUnixNano": start,
        "endTimeUnixNano": start,
        **extra,
    }


def traces_json(*spans: dict[str, Any]) -> bytes:
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "harden"}}]},
                              "scopeSpans": [{"spans": list(spans)}]}]}  # fmt: skip
    return json.dumps(doc).encode()


def nested_kvlist_json(levels: int) -> dict[str, Any]:
    """An AnyValue with ``levels`` nested kvlists."""
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(levels):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def nested_kvlist_pb(levels: int, tid: bytes, start: int) -> bytes:
    req = ExportTraceServiceRequest()
    sp = req.resource_spans.add().scope_spans.add().spans.add(trace_id=tid, span_id=b"\x01" * 8, name="deep")
    sp.start_time_unix_nano = start
    value = sp.attributes.add(key="deep").value
    for _ in range(levels):
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "leaf"
    return req.SerializeToString()


def logs_pb(service: str, times: list[int]) -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = service
    sl = rl.scope_logs.add()
    for t in times:
        sl.log_records.add(time_unix_nano=t, observed_time_unix_nano=t).body.string_value = "hello"
    return req.SerializeToString()


def logs_json_raw(service: str, t: int, record_extra: str = "") -> bytes:
    head = '{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":'
    return (
        f'{head}"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{t}",'
        f'"body":{{"stringValue":"x"}}{record_extra}}}]}}]}}]}}'
    ).encode()


def metrics_pb(service: str, times: list[int]) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = service
    m = rm.scope_metrics.add().metrics.add(name="harden.gauge")
    for t in times:
        m.gauge.data_points.add(time_unix_nano=t, as_double=1.5)
    return req.SerializeToString()


def metrics_json(service: str, t: int, attr_value: dict[str, Any]) -> bytes:
    doc = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
           "scopeMetrics": [{"metrics": [{"name": "harden.gauge", "gauge": {"dataPoints": [
               {"timeUnixNano": str(t), "asDouble": 1.0, "attributes": [{"key": "a", "value": attr_value}]}]}}]}]}]}  # fmt: skip
    return json.dumps(doc).encode()


def many_attributes_request(
    keys: list[str], *, resource_keys: list[str] | None = None, tid: bytes = b"\x07" * 16
) -> bytes:
    """One span with an attribute per key (and an event with the first 40), under a resource with
    ``resource_keys``: for the decoders' attribute limits and their cost."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for i, k in enumerate(resource_keys or []):
        rs.resource.attributes.add(key=k).value.int_value = i
    sp = rs.scope_spans.add().spans.add(trace_id=tid, span_id=b"\x01" * 8, name="many")
    sp.start_time_unix_nano = now_ns()
    for i, k in enumerate(keys):
        sp.attributes.add(key=k).value.string_value = f"v{i}"
    ev = sp.events.add(time_unix_nano=sp.start_time_unix_nano, name="e")
    for i, k in enumerate(keys[:40]):
        ev.attributes.add(key=k).value.int_value = i
    return req.SerializeToString()
