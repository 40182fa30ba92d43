"""A known multi-service scenario, renderable as ``otel_traces`` rows or as OTLP requests.

Traces (times in ms after ``t0``):
  A  frontend GET / → checkout (HTTP) → postgresql/orders, payment (gRPC, fails) → api.stripe.com
     (fails), legacy-cache (peer.service); checkout also has an internal span (no self-edge)
  B  checkout → kafka → accounting, consumer parented by the producer span
  C  checkout producer; the accounting consumer starts trace D and links back to it
  E  checkout → kafka/audit, nobody consumes (virtual messaging node)
  F  frontend root SERVER span directly parents a cart SERVER span (no client span) → redis
  G  a frontend root CLIENT span to cdn.example.com (net.peer.name)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

KINDS = {"Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}


@dataclass(frozen=True)
class S:
    trace: str
    span: str
    parent: str
    service: str
    kind: str
    name: str
    start_ms: float
    dur_ms: float
    error: bool = False
    attrs: dict[str, str] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()

    def tid(self) -> str:
        return _id(self.trace, 32)

    def sid(self) -> str:
        return _id(self.span, 16)

    def pid(self) -> str:
        return _id(self.parent, 16) if self.parent else ""


def _id(text: str, n: int) -> str:
    return text.encode().hex().ljust(n, "0")[:n]


HTTP = {"http.request.method": "GET"}
SPANS: list[S] = [
    S("A", "a1", "", "frontend", "Server", "GET /", 0, 100, attrs=HTTP),
    S("A", "a2", "a1", "frontend", "Client", "GET /checkout", 5, 80, attrs=HTTP),
    S("A", "a3", "a2", "checkout", "Server", "POST /checkout", 10, 70, attrs=HTTP),
    S("A", "a4", "a3", "checkout", "Internal", "validate", 11, 2),
    S("A", "a5", "a3", "checkout", "Client", "SELECT orders", 14, 10,
      attrs={"db.system": "postgresql", "db.namespace": "orders"}),
    S("A", "a6", "a3", "checkout", "Client", "payment.Charge", 25, 30, attrs={"rpc.system": "grpc"}),
    S("A", "a7", "a6", "payment", "Server", "payment.Charge", 27, 25, error=True, attrs={"rpc.system": "grpc"}),
    S("A", "a8", "a7", "payment", "Client", "POST", 28, 20, error=True,
      attrs={"server.address": "api.stripe.com", **HTTP}),
    S("A", "a9", "a3", "checkout", "Client", "cache get", 60, 4, attrs={"peer.service": "legacy-cache"}),
    S("B", "b1", "", "checkout", "Server", "POST /order", 200, 40, attrs=HTTP),
    S("B", "b2", "b1", "checkout", "Producer", "orders publish", 210, 3,
      attrs={"messaging.system": "kafka", "messaging.destination.name": "orders"}),
    S("B", "b3", "b2", "accounting", "Consumer", "orders process", 400, 15, attrs={"messaging.system": "kafka"}),
    S("C", "c1", "", "checkout", "Server", "POST /order", 300, 40, attrs=HTTP),
    S("C", "c2", "c1", "checkout", "Producer", "orders publish", 310, 3,
      attrs={"messaging.system": "kafka", "messaging.destination.name": "orders"}),
    S("D", "d1", "", "accounting", "Consumer", "orders process", 500, 12,
      attrs={"messaging.system": "kafka"}, links=((_id("C", 32), _id("c2", 16)),)),
    S("E", "e1", "", "checkout", "Server", "POST /audit", 600, 20, attrs=HTTP),
    S("E", "e2", "e1", "checkout", "Producer", "audit publish", 605, 2,
      attrs={"messaging.system": "kafka", "messaging.destination.name": "audit"}),
    S("F", "f1", "", "frontend", "Server", "GET /cart", 700, 50, attrs=HTTP),
    S("F", "f2", "f1", "cart", "Server", "GET /cart", 705, 30, attrs=HTTP),
    S("F", "f3", "f2", "cart", "Client", "GET", 710, 5, attrs={"db.system": "redis"}),
    S("G", "g1", "", "frontend", "Client", "GET", 800, 9, attrs={"net.peer.name": "cdn.example.com", **HTTP}),
]  # fmt: skip

# (source, target, kind, target_kind) → (calls, errors)
EDGES = {
    ("frontend", "checkout", "http", "service"): (1, 0),
    ("checkout", "postgresql/orders", "database", "database"): (1, 0),
    ("checkout", "payment", "grpc", "service"): (1, 1),
    ("payment", "api.stripe.com", "http", "external"): (1, 1),
    ("checkout", "legacy-cache", "call", "external"): (1, 0),
    ("checkout", "accounting", "messaging", "service"): (2, 0),
    ("checkout", "kafka/audit", "messaging", "messaging"): (1, 0),
    ("frontend", "cart", "call", "service"): (1, 0),
    ("cart", "redis", "database", "database"): (1, 0),
    ("frontend", "cdn.example.com", "http", "external"): (1, 0),
}
# service → (spans, requests, errors)
SERVICES = {
    "frontend": (4, 3, 0),
    "checkout": (11, 4, 0),
    "payment": (2, 1, 2),
    "accounting": (2, 2, 0),
    "cart": (2, 1, 0),
}
VIRTUAL = {
    "postgresql/orders": "database",
    "api.stripe.com": "external",
    "legacy-cache": "external",
    "kafka/audit": "messaging",
    "redis": "database",
    "cdn.example.com": "external",
}

COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName",
    "SpanAttributes", "Duration", "StatusCode", "Links.TraceId", "Links.SpanId", "Links.TraceState",
    "Links.Attributes", "IngestEncoding", "IngestTransport",
]  # fmt: skip


def base_time(minutes_ago: int = 10) -> datetime:
    """A minute-aligned instant in the recent past (inside any retention)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes_ago)


def rows(spans: list[S], t0: datetime, *, salt: str = "", shift_ms: float = 0) -> list[list[Any]]:
    """``otel_traces`` rows; ``salt`` makes distinct trace ids for repeated copies."""
    out = []
    for s in spans:
        links = [_salted(lt, salt) for lt, _ in s.links]
        out.append(
            [
                (t0 + timedelta(milliseconds=s.start_ms + shift_ms)).replace(tzinfo=None),
                _salted(s.tid(), salt), s.sid(), s.pid(), s.name, s.kind, s.service, dict(s.attrs),
                int(s.dur_ms * 1_000_000), "Error" if s.error else "Unset",
                links, [ls for _, ls in s.links], [""] * len(s.links), [{}] * len(s.links),
                "protobuf", "http",
            ]
        )  # fmt: skip
    return out


def _salted(trace_hex: str, salt: str) -> str:
    if not salt:
        return trace_hex
    tail = salt.encode().hex()
    return trace_hex[: 32 - len(tail)] + tail


def _kv(attrs: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()]


def _ns(t0: datetime, ms: float) -> int:
    return int(t0.timestamp() * 1e9) + int(ms * 1_000_000)


def otlp_request(spans: list[S], t0: datetime) -> ExportTraceServiceRequest:
    """One protobuf request, one ResourceSpans per service."""
    by_service: dict[str, list[Span]] = {}
    for s in spans:
        by_service.setdefault(s.service, []).append(
            Span(
                trace_id=bytes.fromhex(s.tid()), span_id=bytes.fromhex(s.sid()),
                parent_span_id=bytes.fromhex(s.pid()) if s.parent else b"", name=s.name,
                kind=KINDS[s.kind],  # type: ignore[arg-type]
                start_time_unix_nano=_ns(t0, s.start_ms), end_time_unix_nano=_ns(t0, s.start_ms + s.dur_ms),
                attributes=_kv(s.attrs),
                status=Status(code=Status.STATUS_CODE_ERROR if s.error else Status.STATUS_CODE_UNSET),
                links=[Span.Link(trace_id=bytes.fromhex(t), span_id=bytes.fromhex(i)) for t, i in s.links],
            )
        )  # fmt: skip
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_kv({"service.name": svc})), scope_spans=[ScopeSpans(spans=sp)]
            )
            for svc, sp in by_service.items()
        ]
    )


def otlp_json(spans: list[S], t0: datetime) -> bytes:
    """The same as OTLP JSON (hex ids, enum kinds as ints, int64 as strings)."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        span: dict[str, Any] = {
            "traceId": s.tid(), "spanId": s.sid(), "name": s.name, "kind": KINDS[s.kind],
            "startTimeUnixNano": str(_ns(t0, s.start_ms)), "endTimeUnixNano": str(_ns(t0, s.start_ms + s.dur_ms)),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in s.attrs.items()],
            "status": {"code": 2 if s.error else 0},
            "links": [{"traceId": t, "spanId": i} for t, i in s.links],
        }  # fmt: skip
        if s.parent:
            span["parentSpanId"] = s.pid()
        by_service.setdefault(s.service, []).append(span)
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": sp}],
            }
            for svc, sp in by_service.items()
        ]
    }
    return json.dumps(body).encode()
