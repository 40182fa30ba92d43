"""The planted-pattern apps' building blocks: instances, spans, the app record, and a span
builder whose handlers advance a time cursor like real request processing (see ``patterns``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

MS = 1_000_000
SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1
SERVICES = ("gateway", "web", "orders", "users", "inventory", "payments", "billing")
SDK = ("python", "1.45.1")


@dataclass(frozen=True)
class Instance:
    service: str
    instance_id: str
    version: str = "1.4.0"
    sdk_language: str = SDK[0]
    sdk_version: str = SDK[1]
    encoding: str = "protobuf"  # what this instance's exporter sends: protobuf or json

    def resource(self) -> Resource:
        attrs = {
            "service.name": self.service,
            "service.version": self.version,
            "service.instance.id": self.instance_id,
            "telemetry.sdk.language": self.sdk_language,
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": self.sdk_version,
        }
        return Resource(attributes=_kv(attrs))


@dataclass
class PSpan:
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    instance: Instance
    name: str
    kind: int
    start: int
    end: int
    error: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[bytes, bytes]] = field(default_factory=list)

    def proto(self) -> Span:
        return Span(
            trace_id=self.trace_id,
            span_id=self.span_id,
            parent_span_id=self.parent_id,
            name=self.name,
            kind=self.kind,  # type: ignore[arg-type]
            start_time_unix_nano=self.start,
            end_time_unix_nano=self.end,
            attributes=_kv(self.attrs),
            status=Status(code=Status.STATUS_CODE_ERROR if self.error else Status.STATUS_CODE_UNSET),
            links=[Span.Link(trace_id=t, span_id=s) for t, s in self.links],
        )


@dataclass(frozen=True)
class Planted:
    """What a detector should find: its kind and an entity id the finding must name."""

    kind: str
    entity: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class App:
    name: str
    seed: int
    start: datetime  # the window [start, end); traffic starts one window earlier
    end: datetime
    planted: list[Planted] = field(default_factory=list)
    # Kinds that follow from the planted one and are not false positives (e.g. an N+1 loop also
    # dominates the critical path of its request).
    consequences: set[str] = field(default_factory=set)
    spans: list[PSpan] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def requests(self, max_spans: int = 2000) -> Iterator[tuple[str, ExportTraceServiceRequest, int]]:
        """(encoding, request, span count): one ResourceSpans per instance, at most max_spans each."""
        by_instance: dict[Instance, list[PSpan]] = {}
        for s in self.spans:
            by_instance.setdefault(s.instance, []).append(s)
        for encoding in ("protobuf", "json"):
            batch: list[ResourceSpans] = []
            n = 0
            for inst, spans in sorted(by_instance.items(), key=lambda kv: (kv[0].service, kv[0].instance_id)):
                if inst.encoding != encoding:
                    continue
                for i in range(0, len(spans), max_spans):
                    chunk = spans[i : i + max_spans]
                    scope = ScopeSpans(spans=[s.proto() for s in chunk])
                    batch.append(ResourceSpans(resource=inst.resource(), scope_spans=[scope]))
                    n += len(chunk)
                    if n >= max_spans:
                        yield encoding, ExportTraceServiceRequest(resource_spans=batch), n
                        batch, n = [], 0
            if batch:
                yield encoding, ExportTraceServiceRequest(resource_spans=batch), n


def _kv(attrs: dict[str, Any]) -> list[KeyValue]:
    out = []
    for k, v in attrs.items():
        if isinstance(v, bool):
            val = AnyValue(bool_value=v)
        elif isinstance(v, int):
            val = AnyValue(int_value=v)
        elif isinstance(v, float):
            val = AnyValue(double_value=v)
        else:
            val = AnyValue(string_value=str(v))
        out.append(KeyValue(key=k, value=val))
    return out


# ---------------------------------------------------------------------------------------------
# The app: services, instances, spans.
# ---------------------------------------------------------------------------------------------


class Builder:
    """Spans of one app; handlers advance a time cursor like real request processing."""

    def __init__(self, app: App, rng: random.Random, instances: dict[str, list[Instance]]) -> None:
        self.app, self.rng, self.instances = app, rng, instances
        self.median = {s: rng.uniform(0.5, 3.0) for s in instances}  # self time per service (ms)
        self.plant: dict[str, Any] = {}
        self.now = 0  # current trace start (ns)

    def _id(self, n: int) -> bytes:
        return self.rng.getrandbits(8 * n).to_bytes(n, "big")

    def instance(self, service: str, t: int) -> Instance:
        choices = [i for i in self.instances[service] if _active(i, t, self.plant)]
        return self.rng.choice(choices or self.instances[service])

    def span(
        self, trace: bytes, parent: bytes, service: str, name: str, kind: int, start: int, **kw: Any
    ) -> PSpan:
        s = PSpan(
            trace, self._id(8), parent, self.instance(service, self.now), name, kind, start, start, **kw
        )
        self.app.spans.append(s)
        return s

    def self_ms(self, service: str, scale: float = 1.0) -> int:
        return int(self.median[service] * scale * MS * self.rng.lognormvariate(0, 0.25))


def _active(inst: Instance, t: int, plant: dict[str, Any]) -> bool:
    """A versioned instance set: before a deploy only old versions serve, after it only the new."""
    deploy = plant.get("deploy")
    if deploy is None or inst.service != deploy["service"]:
        return True
    return (inst.version == deploy["new"]) == (t >= deploy["at"])


class Call:
    """A server-side unit of work in progress."""

    def __init__(self, b: Builder, trace: bytes, span: PSpan) -> None:
        self.b, self.trace, self.span, self.t = b, trace, span, span.start
        self.ok = True

    @property
    def service(self) -> str:
        return self.span.instance.service

    def work(self, ms: float | None = None) -> None:
        self.t += int(ms * MS) if ms is not None else self.b.self_ms(self.service)

    def finish(self) -> None:
        self.span.end = max(self.t, self.span.start + 1000)
        if not self.ok:
            self.span.error = True

    def rpc(
        self, callee: str, method: str, handler: Callable[[Call], object] | None = None, *, at: int | None = None,
        attrs: dict[str, Any] | None = None, fail: bool = False,
    ) -> tuple[bool, int]:  # fmt: skip
        """A gRPC call; ``at`` starts it at that instant without moving the cursor (concurrency)."""
        t0 = self.t if at is None else at
        name = f"{callee}.{callee.capitalize()}Service/{method}"
        base = {"rpc.system": "grpc", "rpc.service": f"{callee}.{callee.capitalize()}Service", "rpc.method": method,
                "server.address": callee, "server.port": 50051, **(attrs or {})}  # fmt: skip
        client = self.b.span(self.trace, self.span.span_id, self.service, name, CLIENT, t0, attrs=base)
        server = self.b.span(self.trace, client.span_id, callee, name, SERVER, t0 + MS // 5, attrs=dict(base))
        ok = self._serve(client, server, handler, fail, advance=at is None)
        return ok, client.end

    def http(self, callee: str, method: str, route: str, path: str, handler: Callable[[Call], object] | None = None,
             *, resend: int = 0, fail: bool = False) -> bool:  # fmt: skip
        attrs: dict[str, Any] = {"http.request.method": method, "url.full": f"http://{callee}:8080{path}",
                                 "server.address": callee, "server.port": 8080}  # fmt: skip
        if resend:
            attrs["http.request.resend_count"] = resend
        client = self.b.span(self.trace, self.span.span_id, self.service, method, CLIENT, self.t, attrs=attrs)
        s_attrs = {"http.request.method": method, "http.route": route, "url.path": path}
        server = self.b.span(self.trace, client.span_id, callee, f"{method} {route}", SERVER, self.t + MS // 5,
                             attrs=s_attrs)  # fmt: skip
        return self._serve(client, server, handler, fail, advance=True)

    def _serve(self, client: PSpan, server: PSpan, handler: Callable[[Call], object] | None, fail: bool,
               *, advance: bool) -> bool:  # fmt: skip
        """Run the callee's server span (its own work, then ``handler``), then close the client span
        a little after it; ``advance``: this call is sequential, so it moves this span's clock and
        its failure fails this span."""
        inner = Call(self.b, self.trace, server)
        inner.work()
        if handler is not None:
            handler(inner)
        if fail:
            inner.ok = False
        inner.finish()
        client.end = server.end + MS // 5
        client.error = not inner.ok
        if advance:
            self.t = client.end
            if not inner.ok:
                self.ok = False
        return inner.ok

    def db(self, system: str, namespace: str, statement: str, ms: float, *, at: int | None = None,
           fail: bool = False, op: str = "SELECT") -> int:  # fmt: skip
        t0 = self.t if at is None else at
        attrs: dict[str, Any] = {"db.system": system, "db.operation.name": op, "server.address": system}
        if namespace:
            attrs["db.namespace"] = namespace
        if system != "redis":
            attrs["db.query.text"] = statement
        table = statement.split(" FROM ")[-1].split()[0] if " FROM " in statement else namespace
        name = statement.split()[0] if system == "redis" else f"{op} {namespace}.{table}"
        s = self.b.span(
            self.trace, self.span.span_id, self.service, name, CLIENT, t0, attrs=attrs, error=fail
        )
        s.end = t0 + int(ms * MS * self.b.rng.lognormvariate(0, 0.2))
        if at is None:
            self.t = s.end
        if fail:
            self.ok = False
        return s.end

    def external(self, host: str, method: str, path: str, ms: float) -> None:
        attrs = {"http.request.method": method, "url.full": f"https://{host}{path}", "server.address": host}
        s = self.b.span(self.trace, self.span.span_id, self.service, method, CLIENT, self.t, attrs=attrs)
        self.t = s.end = self.t + int(ms * MS * self.b.rng.lognormvariate(0, 0.2))

    def internal(self, name: str) -> Call:
        s = self.b.span(self.trace, self.span.span_id, self.service, name, INTERNAL, self.t)
        return Call(self.b, self.trace, s)

    def produce(
        self, topic: str, consumer: str, lag_ms: float, *, linked: bool, handler: Callable[[Call], object]
    ) -> None:
        attrs = {"messaging.system": "kafka", "messaging.destination.name": topic, "messaging.operation.type": "send",
                 "server.address": "kafka"}  # fmt: skip
        p = self.b.span(
            self.trace, self.span.span_id, self.service, f"{topic} publish", PRODUCER, self.t, attrs=attrs
        )
        self.t = p.end = self.t + MS // 2
        c_attrs = {"messaging.system": "kafka", "messaging.destination.name": topic,
                   "messaging.operation.type": "process", "messaging.consumer.group.name": consumer}  # fmt: skip
        t0 = p.end + int(lag_ms * MS * self.b.rng.uniform(0.8, 1.2))
        trace = self.b._id(16) if linked else self.trace
        parent = b"" if linked else p.span_id
        links = [(self.trace, p.span_id)] if linked else []
        c = self.b.span(trace, parent, consumer, f"{topic} process", CONSUMER, t0, attrs=c_attrs, links=links)
        inner = Call(self.b, trace, c)
        inner.work()
        handler(inner)
        inner.finish()
