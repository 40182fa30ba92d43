"""Planted architectural patterns: small apps whose traces carry one known pattern each.

An :class:`App` is a shop-like set of services (``gateway`` → ``web`` → ``orders``, ``users``,
``inventory``, ``payments``; ``postgresql/shop``, ``redis``; ``kafka/orders`` → ``billing``),
2-3 instances each, with latencies, traffic mix and trace counts drawn from ``random.Random(seed)``.
:func:`build` plants one pattern (a :data:`PATTERNS` name, or ``"clean"`` for a control with
none) with its parameters drawn from the same seed and returns the spans, ready to send as OTLP
protobuf requests (one ``ResourceSpans`` per instance; an instance's encoding says whether it
would export JSON). The traffic covers the window and the period before it (dependency changes
need earlier data); :class:`Planted` says which kind and which entity a detector should report.

Used by the detector tests, the demo (``otel-ai demo --scenario n-plus-one``) and
``bench/insights_eval.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from otel_ai.model import Payload

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
        inner = Call(self.b, self.trace, server)
        inner.work()
        if handler is not None:
            handler(inner)
        if fail:
            inner.ok = False
        inner.finish()
        client.end = server.end + MS // 5
        client.error = not inner.ok
        if at is None:
            self.t = client.end
        if not inner.ok and at is None:
            self.ok = False
        return inner.ok, client.end

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
        inner = Call(self.b, self.trace, server)
        inner.work()
        if handler is not None:
            handler(inner)
        if fail:
            inner.ok = False
        inner.finish()
        client.end = server.end + MS // 5
        client.error = not inner.ok
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


# ---------------------------------------------------------------------------------------------
# Flows (handlers), each consulting the plant.
# ---------------------------------------------------------------------------------------------

PG = ("postgresql", "shop")
ORDERS_SQL = "SELECT id, total FROM orders WHERE user_id = {n}"
ITEMS_SQL = "SELECT * FROM order_items WHERE order_id = {n}"
HISTORY_SQL = "SELECT * FROM order_history WHERE user_id = {n} ORDER BY created_at DESC"
USER_OPS = ("GetProfile", "GetPrefs", "GetAvatar", "GetAddress", "GetLoyalty", "GetFlags", "GetLocale",
            "GetSegments", "GetLimits", "GetConsent", "GetWallet", "GetSession")  # fmt: skip


class Flows:
    def __init__(self, b: Builder) -> None:
        self.b, self.rng, self.plant = b, b.rng, b.plant

    def on(self, name: str) -> dict[str, Any] | None:
        """The plant's parameters when it applies to this request (its share of traffic)."""
        p = self.plant.get(name)
        if p is None or self.rng.random() >= p.get("share", 1.0):
            return None
        return p

    # --- GET /orders: web → orders (ListOrders → postgres), web → users ------------------------
    def list_orders(self, c: Call) -> None:
        c.db(*PG, ORDERS_SQL.format(n=self.rng.randint(1, 9999)), self.rng.uniform(1, 3))
        if p := self.on("n_plus_one"):
            for _ in range(p["calls"]):
                if p["via"] == "db":
                    c.db(*PG, ITEMS_SQL.format(n=self.rng.randint(1, 99999)), p["ms"])
                else:
                    uid, ms = self.rng.randint(1, 99999), float(p["ms"])
                    c.http("users", "GET", "/users/{id}", f"/users/{uid}", partial(Call.work, ms=ms))
        if p := self.on("slow_query"):
            c.db(*PG, HISTORY_SQL.format(n=self.rng.randint(1, 9999)), p["ms"])
        if p := self.on("chatty_dependency"):
            ops = [USER_OPS[i % len(USER_OPS)] for i in range(p["calls"])]
            self.rng.shuffle(ops)
            parts = [ops[i::3] for i in range(3)]
            for i, part in enumerate(parts):
                inner = c.internal(f"load-section-{i}")
                for method in part:
                    inner.rpc("users", method, lambda s: s.work(self.rng.uniform(0.2, 1.0)))
                inner.finish()
                c.t = inner.t

    def get_user(self, c: Call) -> None:
        if p := self.on("critical_path_hotspot"):
            c.work(p["ms"])
        c.db("redis", "", "GET user", self.rng.uniform(0.2, 0.6), op="GET")

    def f_orders(self, c: Call) -> None:
        c.work()
        if p := self.on("sequential_calls"):
            a, b, d = p["ms"]

            def orders(s: Call) -> None:
                self.list_orders(s)
                s.work(b)

            c.rpc("users", "GetProfile", lambda s: s.work(a))
            c.rpc("orders", "ListOrders", orders)
            c.rpc("inventory", "GetRecommendations", lambda s: s.work(d))
            return
        c.rpc("orders", "ListOrders", self.list_orders)
        c.rpc("users", "GetUser", self.get_user)

    # --- GET /products/{id}: web → inventory (GetItem → redis, postgres) -------------------------
    def get_item(self, c: Call) -> None:
        c.db("redis", "", "GET item", self.rng.uniform(0.2, 0.6), op="GET")
        p = self.on("error_propagation")
        if p and p["origin"] == "inventory":
            c.db(*PG, "SELECT * FROM products WHERE id = 7", self.rng.uniform(1, 3), fail=True)
            return
        if self.rng.random() < 0.3:
            c.db(*PG, "SELECT * FROM products WHERE id = 7", self.rng.uniform(1, 3))

    def f_product(self, c: Call) -> None:
        c.work()
        p = self.on("fan_out")
        if p is None:
            c.rpc("inventory", "GetItem", self.get_item)
            return
        t0, end = c.t, c.t
        for i in range(p["calls"]):
            start = t0 + int(self.rng.uniform(0, 0.5) * MS)
            if p["via"] == "shards":
                _, e = c.rpc(
                    f"catalog-shard-{i}", "Search", lambda s: s.work(self.rng.uniform(5, 25)), at=start
                )
            else:
                e = c.db("cassandra", "catalog", f"SELECT * FROM items WHERE bucket = {i}", self.rng.uniform(5, 25),
                         at=start)  # fmt: skip
            end = max(end, e)
        c.t = end

    # --- POST /checkout: web → orders PlaceOrder → inventory, payments, kafka → billing ----------
    def reserve(self, c: Call) -> None:
        c.db(*PG, "UPDATE stock SET qty = qty - 1 WHERE item_id = 42", self.rng.uniform(1, 3), op="UPDATE")
        if p := self.on("dependency_cycle"):
            if p["length"] == 2:
                c.rpc("orders", "GetOrderStatus")
            else:
                c.rpc("users", "GetUser", lambda s: s.rpc("orders", "CountOrders"))

    def charge(self, c: Call) -> None:
        c.external("api.payments.example", "POST", "/v1/charges", self.rng.uniform(3, 8))

    def place_order(self, c: Call) -> None:
        c.rpc("inventory", "Reserve", self.reserve)
        if not c.ok:
            return
        p = self.on("retry_storm")
        perr = self.on("error_propagation")
        if p is not None:
            for attempt in range(p["attempts"]):
                last = attempt == p["attempts"] - 1
                fail = not last or self.rng.random() < p["final_failure"]
                if p["via"] == "http":
                    ok = c.http("payments", "POST", "/charge", "/charge", fail=fail, resend=attempt)
                else:
                    ok, _ = c.rpc("payments", "Charge", fail=fail)
                if ok:
                    c.ok = True
                    break
        elif perr and perr["origin"] == "payments":
            c.rpc("payments", "Charge", self.charge, fail=True)
            return
        else:
            c.rpc("payments", "Charge", self.charge)
        if not c.ok:
            return
        dep = self.plant.get("dependency")
        if dep and _dep_active(dep, self.b.now):
            if dep["target_kind"] == "service":
                c.rpc(dep["target"], "Check")
            else:
                c.external(dep["target"], "POST", "/v1/check", self.rng.uniform(2, 6))
        lag = self.plant.get("queue_lag")
        lag_ms = (
            lag["ms"] if lag and self.b.now >= self.b.app.start.timestamp() * 1e9 else self.rng.uniform(2, 20)
        )
        linked = bool(lag and lag["linked"])
        c.produce("orders", "billing", lag_ms, linked=linked, handler=lambda s: s.db(*PG, "INSERT INTO invoices "
                  "VALUES (1)", self.rng.uniform(1, 3), op="INSERT"))  # fmt: skip

    def f_checkout(self, c: Call) -> None:
        c.work()
        c.rpc("orders", "PlaceOrder", self.place_order)

    def request(self, t: int) -> None:
        b = self.b
        b.now = t
        flow, method, route = self.rng.choices(
            [(self.f_orders, "GET", "/orders"), (self.f_product, "GET", "/products/{id}"),
             (self.f_checkout, "POST", "/checkout")], weights=b.plant.get("mix", (0.45, 0.35, 0.2)),
        )[0]  # fmt: skip
        trace = b._id(16)
        root = b.span(trace, b"", "gateway", f"{method} {route}", SERVER, t, attrs={"http.request.method": method,
                      "http.route": route})  # fmt: skip
        gw = Call(b, trace, root)
        gw.work(0.3)
        path = route.replace("{id}", str(self.rng.randint(1, 500)))
        gw.http("web", method, route, path, flow)
        gw.work(0.2)
        gw.finish()


def _dep_active(dep: dict[str, Any], t: int) -> bool:
    """Whether the changing dependency is called at ``t`` (new: after the change; vanished: before)."""
    after = t >= dep["at"]
    return after if dep["change"] == "new" else not after


# ---------------------------------------------------------------------------------------------
# Plants: parameters drawn per seed, what to find, and what follows from it.
# ---------------------------------------------------------------------------------------------

Plant = Callable[[random.Random, App, dict[str, Any], dict[str, list[Instance]]], None]


def _n_plus_one(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    via = rng.choice(("db", "http"))
    plant["n_plus_one"] = {"calls": rng.randint(6, 8), "ms": rng.uniform(10, 25), "via": via,
                           "share": rng.uniform(0.5, 1.0)}  # fmt: skip
    app.planted.append(Planted("n_plus_one", "orders", plant["n_plus_one"]))
    app.consequences |= {"critical_path_hotspot"}


def _sequential(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["sequential_calls"] = {
        "ms": [rng.uniform(60, 160) for _ in range(3)],
        "share": rng.uniform(0.5, 1.0),
    }
    app.planted.append(Planted("sequential_calls", "web", plant["sequential_calls"]))
    app.consequences |= {"critical_path_hotspot"}


def _fan_out(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    via = rng.choice(("shards", "partitions"))
    n = rng.randint(12, 20)
    plant["fan_out"] = {"calls": n, "via": via, "share": rng.uniform(0.5, 1.0)}
    if via == "shards":
        for i in range(n):
            inst[f"catalog-shard-{i}"] = _instances(rng, f"catalog-shard-{i}", 2)
    app.planted.append(Planted("fan_out", "web", plant["fan_out"]))
    app.consequences |= {"critical_path_hotspot"}


def _retry(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["retry_storm"] = {"attempts": rng.randint(3, 6), "via": rng.choice(("grpc", "http")),
                            "final_failure": rng.uniform(0.0, 0.1), "share": rng.uniform(0.4, 1.0)}  # fmt: skip
    app.planted.append(Planted("retry_storm", "payments", plant["retry_storm"]))
    app.consequences |= {"error_propagation"}


def _chatty(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["chatty_dependency"] = {"calls": rng.randint(12, 24), "share": rng.uniform(0.6, 1.0)}
    app.planted.append(Planted("chatty_dependency", "orders->users", plant["chatty_dependency"]))
    app.consequences |= {"critical_path_hotspot"}  # many round trips: users holds the path


def _cycle(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["dependency_cycle"] = {"length": rng.choice((2, 3)), "share": rng.uniform(0.3, 1.0)}
    app.planted.append(Planted("dependency_cycle", "inventory", plant["dependency_cycle"]))


def _hotspot(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["critical_path_hotspot"] = {"ms": rng.uniform(100, 400), "share": rng.uniform(0.7, 1.0)}
    app.planted.append(Planted("critical_path_hotspot", "users", plant["critical_path_hotspot"]))


def _errors(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    origin = rng.choice(("inventory", "payments"))
    plant["error_propagation"] = {"origin": origin, "share": rng.uniform(0.25, 0.6)}
    app.planted.append(Planted("error_propagation", origin, plant["error_propagation"]))


def _spof(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    svc = rng.choice(("web", "orders"))
    inst[svc] = inst[svc][:1]
    app.planted.append(Planted("single_point_of_failure", svc, {"service": svc}))


def _slow_query(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["slow_query"] = {"ms": rng.uniform(600, 2500), "share": rng.uniform(0.1, 0.3)}
    app.planted.append(Planted("slow_query", "orders", plant["slow_query"]))
    app.consequences |= {"critical_path_hotspot"}


def _queue_lag(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    plant["queue_lag"] = {"ms": rng.uniform(2000, 60000), "linked": rng.random() < 0.5}
    app.planted.append(Planted("queue_lag", "billing", plant["queue_lag"]))


def _dependency(change: str) -> Plant:
    def plant_it(
        rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]
    ) -> None:
        start_ns = int(app.start.timestamp() * 1e9)
        length = int((app.end - app.start).total_seconds() * 1e9)
        target, kind = rng.choice(
            (("fraud-check", "service"), ("api.fraud.example", "external"))
            if change == "new"
            else (("legacy-audit", "service"), ("api.audit.example", "external"))
        )
        deploy = rng.random() < 0.5
        at = start_ns + int(length * rng.uniform(0.2, 0.6)) if deploy else start_ns
        plant["dependency"] = {"target": target, "target_kind": kind, "change": change, "at": at}
        if kind == "service":
            inst[target] = _instances(rng, target, 2)
        if deploy:
            plant["deploy"] = {"service": "orders", "new": "1.5.0", "at": at}
            inst["orders"] = inst["orders"] + [
                Instance("orders", f"orders-v15-{i}", version="1.5.0") for i in range(len(inst["orders"]))
            ]
        kind_name = f"{change}_dependency"
        app.planted.append(Planted(kind_name, f"orders->{target}", {"deploy": deploy, "target": target}))

    return plant_it


def _drift(what: str) -> Plant:
    def plant_it(
        rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]
    ) -> None:
        svc = rng.choice(("web", "orders", "users", "inventory"))
        first = inst[svc][0]
        if what == "encoding":
            odd = Instance(svc, first.instance_id, first.version, encoding="json")
        else:
            odd = Instance(svc, first.instance_id, first.version, sdk_version=rng.choice(("1.20.0", "1.27.0")),
                           sdk_language=rng.choice(("python", "python", "java")))  # fmt: skip
        inst[svc] = [odd, *inst[svc][1:]]
        app.planted.append(Planted(f"{what}_drift", svc, {"service": svc}))

    return plant_it


def _anomaly(rng: random.Random, app: App, plant: dict[str, Any], inst: dict[str, list[Instance]]) -> None:
    svc = rng.choice(("orders", "users", "inventory"))
    plant["critical_path_hotspot"] = None
    app.anomalies.append({
        "id": f"{rng.getrandbits(64):016x}",
        "entity": {"kind": "service", "service": svc, "operation": None, "target": None},
        "opened_at": app.start.isoformat(), "closed_at": None, "score": round(rng.uniform(1.5, 4), 2),
        "severity": "warning",
        "features": [{"name": f"{svc} p95", "value": 40.0, "baseline": 4.0, "ratio": 10.0, "unit": "ms"}],
        "root_causes": [{"service": svc, "score": 1.0}],
        "evidence": {"kind": "slow_itself", "services": [svc, "web", "gateway"], "trace_ids": []},
    })  # fmt: skip
    app.planted.append(Planted("anomaly", svc, {"service": svc}))


PATTERNS: dict[str, Plant] = {
    "n_plus_one": _n_plus_one,
    "sequential_calls": _sequential,
    "fan_out": _fan_out,
    "retry_storm": _retry,
    "chatty_dependency": _chatty,
    "dependency_cycle": _cycle,
    "critical_path_hotspot": _hotspot,
    "error_propagation": _errors,
    "single_point_of_failure": _spof,
    "slow_query": _slow_query,
    "queue_lag": _queue_lag,
    "new_dependency": _dependency("new"),
    "vanished_dependency": _dependency("vanished"),
    "encoding_drift": _drift("encoding"),
    "sdk_drift": _drift("sdk"),
    "anomaly": _anomaly,
}


def _instances(rng: random.Random, service: str, n: int) -> list[Instance]:
    return [Instance(service, f"{service}-{rng.getrandbits(32):08x}") for _ in range(n)]


def build(pattern: str, seed: int, start: datetime, window: timedelta = timedelta(minutes=15),
          *, traces: int | None = None, previous: bool = True) -> App:  # fmt: skip
    """An app with ``pattern`` planted (``"clean"``: none) over ``[start, start + window)``.

    ``traces`` per window (default: drawn, 150-300); ``previous`` also fills the window before.
    """
    if pattern != "clean" and pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; known: clean, {', '.join(PATTERNS)}")
    rng = random.Random(f"{pattern}/{seed}")
    app = App(pattern, seed, start, start + window)
    inst = {s: _instances(rng, s, rng.randint(2, 3)) for s in SERVICES}
    plant: dict[str, Any] = {}
    if pattern != "clean":
        PATTERNS[pattern](rng, app, plant, inst)
    b = Builder(app, rng, inst)
    b.plant.update({k: v for k, v in plant.items() if v is not None})
    flows = Flows(b)
    n = traces or rng.randint(150, 300)
    length = int(window.total_seconds() * 1e9)
    t_start = int(start.timestamp() * 1e9)
    periods = [t_start - length, t_start] if previous else [t_start]
    for p0 in periods:
        for t in sorted(p0 + int(rng.random() * (length - 60 * 10**9)) for _ in range(n)):
            flows.request(t)
    return app


def payloads(app: App, transport: str = "grpc") -> list[Payload]:
    """The app's spans as validated-payload values (what the receivers hand the writer).

    A JSON instance's spans are marked ``encoding="json"`` with a protobuf body, as the receivers
    store an OTLP/JSON request after transcoding it.
    """
    out = []
    for encoding, req, n in app.requests():
        out.append(
            Payload(
                signal="traces",
                encoding="json" if encoding == "json" else "protobuf",
                transport="http" if encoding == "json" else transport,  # type: ignore[arg-type]
                body=req.SerializeToString(),
                items=n,
                wire="protobuf" if encoding == "json" else None,
            )
        )
    return out
