"""Small builders of OTLP export requests for receiver tests (protobuf and OTLP JSON)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def trace_request(
    n: int = 3, *, service: str = "svc", trace_id: bytes | None = None
) -> tuple[ExportTraceServiceRequest, str]:
    """A request with ``n`` spans of one new trace; returns it and the trace id (hex)."""
    tid = trace_id or os.urandom(16)
    now = time.time_ns()
    spans = [
        Span(
            trace_id=tid, span_id=os.urandom(8), name=f"op-{i}", kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=now, end_time_unix_nano=now + 1_000_000,
            attributes=[KeyValue(key="i", value=AnyValue(int_value=i))],
        )
        for i in range(n)
    ]  # fmt: skip
    req = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
                ),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    return req, tid.hex()


def json_trace(spans: list[dict[str, Any]], service: str = "svc") -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                    "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def json_span(trace_id: str, span_id: str, name: str = "op") -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": 2,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000),
    }  # fmt: skip
