"""The simulated Astronomy Shop: user flows as call trees of real SDK spans with explicit times.

Topology from the OpenTelemetry demo (research §5.1): load-generator → frontend-proxy (Envoy) →
frontend / image-provider; frontend → ad, cart, checkout, currency, product-catalog,
recommendation, shipping; checkout → cart, currency, email, payment, product-catalog, shipping,
kafka (producer); cart → valkey-cart (redis protocol); recommendation → product-catalog;
shipping → quote; product-catalog and accounting → postgresql; kafka → accounting (consumer span
parented to the producer) and fraud-detection (new trace, *linked* to the producer); flag checks →
flagd. Every remote call is a CLIENT span in the caller and a SERVER span in the callee, with the
semantic-convention attributes each instrumentation library would set. Times are simulated: a
span starts at a cursor and ends after its children plus its own lognormal self-time, so the same
code serves real time and backfill. Every service runs ``Telemetry.instances`` (2) instances; each
server span picks one (``Shop.pick``) and the spans and logs of that call carry its resource.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.util.types import AnyValue, Attributes

from otel_ai.demo.scenarios import Effects
from otel_ai.demo.telemetry import SERVICES, Telemetry

MS = 1_000_000
PRODUCTS = ("OLJCESPC7Z", "66VCHSJNUP", "1YMWWN1N4O", "L9ECAV7KIM", "2ZYFJ3GM2N",
            "0PUK6V6EV0", "LS4PSXUNUM", "9SIQT8TOJO", "6E92ZMYYFZ", "HQTGWGPNH4")  # fmt: skip
CURRENCIES = ("USD", "EUR", "CAD", "JPY", "GBP", "TRY")
# (exception.type, message) the demo's services log when the matching flag is on.
FAILURES = {
    "payment": ("Error", "Payment request failed. Invalid token. app.loyalty.level=gold"),
    "cart": ("System.Exception", "Wasn't able to connect to redis"),
    "product-catalog": ("ProductCatalogError", "Error: Product Catalog Fail Feature Flag Enabled"),
    "ad": ("io.grpc.StatusRuntimeException", "RESOURCE_EXHAUSTED: Ad service failure"),
    "email": ("NoMemoryError", "failed to allocate memory"),
    "currency": ("std::runtime_error", "Currency conversion failed: exchange rates unavailable"),
}
BASE_ERROR = {"payment": 0.002}  # a few invalid cards even on a good day
SPOF_SERVICE = "frontend"  # single-point-of-failure: the one service left with a single instance
ENCODING_SERVICE = "product-catalog"  # encoding-drift: the service with an OTLP/JSON instance
REVIEWS_API = "api.reviews.example"  # new-/vanished-dependency: the third-party API the frontend calls
Handler = Callable[["Call"], None]


class Call:
    """One server-side unit of work: a span, its service, a time cursor and its outcome."""

    __slots__ = ("ctx", "error", "inst", "ok", "op", "service", "shop", "span", "t")

    def __init__(self, shop: Shop, service: str, op: str, span: Span, t: int, inst: int | str = 0) -> None:
        self.shop, self.service, self.op, self.span, self.t = shop, service, op, span, t
        self.inst = inst  # the instance (replica) of the service that serves this call
        self.ctx = set_span_in_context(span)
        self.ok = True
        self.error = ""

    def work(self, median_ms: float, sigma: float = 0.35) -> None:
        self.t += self.shop.self_time(self.service, median_ms, sigma)

    def child_failed(self, what: str) -> None:
        self.ok = False
        self.error = self.error or what

    def rpc(self, callee: str, method: str, handler: Handler, attrs: Attributes = None) -> bool:
        return self.shop.rpc(self, callee, method, handler, attrs)

    def http(self, callee: str, method: str, route: str, handler: Handler) -> bool:
        return self.shop.http(self, callee, method, route, handler)

    def db(self, system: str, op: str, target: str, server: str, median_ms: float, name: str = "") -> bool:
        return self.shop.db(self, system, op, target, server, median_ms, name)

    def external(self, host: str, method: str, path: str, median_ms: float) -> None:
        self.shop.external(self, host, method, path, median_ms)


class Shop:
    """Emits whole traces for user requests at simulated instants under given :class:`Effects`."""

    def __init__(self, telemetry: Telemetry, rng: random.Random) -> None:
        self.tel = telemetry
        self.rng = rng
        self.eff = Effects()
        self.load = 1.0
        self.spans = 0
        self.logs = 0
        self.requests = 0
        flows: Sequence[tuple[float, Handler, str, str, str]] = (
            (10, self.f_product, "GET", "/api/products/{productId}", "frontend"),
            (2, self.f_products, "GET", "/api/products", "frontend"),
            (3, self.f_recommendations, "GET", "/api/recommendations", "frontend"),
            (3, self.f_ads, "GET", "/api/data", "frontend"),
            (3, self.f_get_cart, "GET", "/api/cart", "frontend"),
            (2, self.f_add_cart, "POST", "/api/cart", "frontend"),
            (1, self.f_shipping, "GET", "/api/shipping", "frontend"),
            (1, self.f_currency, "GET", "/api/currency", "frontend"),
            (1, self.f_checkout, "POST", "/api/checkout", "frontend"),
            (3, self.f_image, "GET", "/images/products/{file}", "image-provider"),
        )
        self.flows = flows
        total = sum(f[0] for f in flows)
        acc, self.cum = 0.0, []
        for f in flows:
            acc += f[0] / total
            self.cum.append(acc)

    # --- primitives -----------------------------------------------------------------------
    def self_time(self, service: str, median_ms: float, sigma: float) -> int:
        mult = self.eff.latency_mult.get(service, 1.0) * (1.0 + 0.15 * self.load)
        return int(median_ms * MS * mult * math.exp(sigma * self.rng.gauss(0.0, 1.0)))

    def pick(self, service: str) -> int | str:
        """Which instance of ``service`` serves a new request: one of ``tel.instances`` replicas
        at random, or a planted odd one (one instance only, an older SDK, an OTLP/JSON exporter)."""
        pat = self.eff.patterns
        if service == SPOF_SERVICE and "single_point_of_failure" in pat:
            n = max(1, int(pat["single_point_of_failure"]))
        else:
            n = self.tel.instances
        r = self.rng.random()
        if service == "cart" and r < pat.get("sdk_drift", 0.0):
            return "sdk"
        if service == ENCODING_SERVICE and r < pat.get("encoding_drift", 0.0):
            return "json"
        return int(r * n) if n > 1 else 0

    def _start(
        self, service: str, name: str, kind: SpanKind, parent: Context | None, t: int, attrs: Attributes,
        links: Sequence[Link] | None = None, inst: int | str = 0,
    ) -> Span:  # fmt: skip
        sdk = "1.20.0" if inst == "sdk" else None
        tracer = self.tel.tracer(
            service, self.eff.version.get(service), sdk, inst, "json" if inst == "json" else ""
        )
        self.spans += 1
        span = tracer.start_span(
            name, context=parent if parent is not None else Context(), kind=kind, attributes=attrs, links=links,
            start_time=t, record_exception=False, set_status_on_exception=False,
        )  # fmt: skip
        return span  # type: ignore[return-value]

    def _exception(self, span: Span, t: int, exc_type: str, message: str) -> None:
        span.add_event("exception", {"exception.type": exc_type, "exception.message": message,
                                     "exception.escaped": False}, timestamp=t)  # fmt: skip
        span.set_status(Status(StatusCode.ERROR, message))

    def _net(self) -> int:
        return int((0.2 + self.rng.random() * 0.6) * MS)

    def _serve(self, call: Call, handler: Handler) -> None:
        """Run a server handler, then apply latency additions and injected/base errors."""
        handler(call)
        eff, svc = self.eff, call.service
        add = eff.latency_add_ms.get(svc, 0.0) + eff.latency_add_ms.get(f"{svc}/{call.op}", 0.0)
        if add:
            call.t += int(add * MS * (0.9 + 0.2 * self.rng.random()))
        p = eff.error.get(svc, 0.0) + eff.error.get(f"{svc}/{call.op}", 0.0) + BASE_ERROR.get(svc, 0.0)
        if call.ok and p > 0 and self.rng.random() < p:
            exc_type, msg = FAILURES.get(svc, ("Error", f"{svc} failed"))
            call.ok, call.error = False, msg
            self._exception(call.span, call.t, exc_type, msg)
            self.log(svc, call, "ERROR", msg, {"exception.type": exc_type})
        elif not call.ok:
            self._exception(call.span, call.t, "Error", call.error)
        m = self.tel.metrics(svc)
        if m is not None:
            dur = call.t - call.span.start_time  # type: ignore[operator]
            m.duration.record(dur * m.unit_scale, {"rpc.method": call.op} if m.unit_scale == 1e-6 else None)

    def rpc(self, caller: Call, callee: str, method: str, handler: Handler, attrs: Attributes = None) -> bool:
        info = SERVICES[callee]
        rpc_service = info.rpc_service or callee
        name = f"{rpc_service}/{method}"
        base: dict[str, AnyValue] = {"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method,
                "server.address": callee, "server.port": info.port, **(attrs or {})}  # fmt: skip
        client = self._start(
            caller.service, name, SpanKind.CLIENT, caller.ctx, caller.t, base, inst=caller.inst
        )
        unreachable = self.eff.unreachable.get(callee, 0.0)
        if unreachable and self.rng.random() < unreachable:
            # The connection is refused: no server span exists (the structure changes).
            caller.t += int((2 + 18 * self.rng.random()) * MS)
            client.set_attribute("rpc.grpc.status_code", 14)
            msg = f"connection error: dial tcp: lookup {callee}: no such host"
            self._exception(client, caller.t, "UNAVAILABLE", msg)
            client.end(end_time=caller.t)
            caller.child_failed(f"{callee} unavailable")
            return False
        t0 = caller.t + self._net()
        inst = self.pick(callee)
        server = self._start(callee, name, SpanKind.SERVER, set_span_in_context(client), t0, base, inst=inst)
        call = Call(self, callee, method, server, t0, inst)
        self._serve(call, handler)
        code = 0 if call.ok else 13
        server.set_attribute("rpc.grpc.status_code", code)
        server.end(end_time=call.t)
        caller.t = call.t + self._net()
        client.set_attribute("rpc.grpc.status_code", code)
        if not call.ok:
            client.set_status(Status(StatusCode.ERROR, call.error))
            caller.child_failed(f"rpc error: code = Internal desc = {call.error}")
        client.end(end_time=caller.t)
        return call.ok

    def http(self, caller: Call, callee: str, method: str, route: str, handler: Handler) -> bool:
        info = SERVICES[callee]
        url = f"http://{callee}:{info.port}{route}"
        c_attrs: dict[str, AnyValue] = {"http.request.method": method, "url.full": url, "server.address": callee,
                   "server.port": info.port}  # fmt: skip
        client = self._start(
            caller.service, method, SpanKind.CLIENT, caller.ctx, caller.t, c_attrs, inst=caller.inst
        )
        t0 = caller.t + self._net()
        s_attrs: dict[str, AnyValue] = {"http.request.method": method, "http.route": route, "url.path": route, "url.scheme": "http",
                   "server.address": callee, "server.port": info.port}  # fmt: skip
        inst = self.pick(callee)
        server = self._start(
            callee, f"{method} {route}", SpanKind.SERVER, set_span_in_context(client), t0, s_attrs, inst=inst
        )
        call = Call(self, callee, route, server, t0, inst)
        self._serve(call, handler)
        status = 200 if call.ok else 500
        server.set_attribute("http.response.status_code", status)
        server.end(end_time=call.t)
        caller.t = call.t + self._net()
        client.set_attribute("http.response.status_code", status)
        if not call.ok:
            client.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            caller.child_failed(f"{callee} answered {status}: {call.error}")
        client.end(end_time=caller.t)
        return call.ok

    def db(
        self, caller: Call, system: str, op: str, target: str, server: str, median_ms: float, name: str
    ) -> bool:
        attrs: dict[str, AnyValue] = {"db.system": system, "db.operation": op, "db.operation.name": op, "server.address": server,
                 "server.port": 6379 if system == "redis" else 5432}  # fmt: skip
        if system != "redis":
            attrs["db.name"] = attrs["db.namespace"] = "otel"
            attrs["db.sql.table"] = target
        span = self._start(
            caller.service,
            name or f"{op} {target}",
            SpanKind.CLIENT,
            caller.ctx,
            caller.t,
            attrs,
            inst=caller.inst,
        )
        caller.t += self.self_time(server, median_ms, 0.4)
        span.end(end_time=caller.t)
        return True

    def external(self, caller: Call, host: str, method: str, path: str, median_ms: float) -> None:
        """An HTTP call to a third-party API: a CLIENT span only (nobody instruments the other side)."""
        attrs: dict[str, AnyValue] = {"http.request.method": method, "url.full": f"https://{host}{path}",
                 "server.address": host, "server.port": 443, "http.response.status_code": 200}  # fmt: skip
        span = self._start(
            caller.service, method, SpanKind.CLIENT, caller.ctx, caller.t, attrs, inst=caller.inst
        )
        caller.t += self.self_time(host, median_ms, 0.3)
        span.end(end_time=caller.t)

    def log(self, service: str, call: Call | None, level: str, body: str, attrs: Attributes = None) -> None:
        logger = self.tel.logger(service, call.inst if call is not None else 0)
        if logger is None:
            return
        from opentelemetry._logs import SeverityNumber

        sev = {"INFO": SeverityNumber.INFO, "WARN": SeverityNumber.WARN, "ERROR": SeverityNumber.ERROR}[level]
        t = call.t if call is not None else 0
        logger.emit(timestamp=t, observed_timestamp=t, context=call.ctx if call else None, severity_number=sev,
                    severity_text=level, body=body, attributes=attrs)  # fmt: skip
        self.logs += 1

    def flag(self, c: Call, flag: str) -> None:
        """An OpenFeature flag evaluation against flagd (the demo's services check flags per request)."""

        def resolve(s: Call) -> None:
            s.work(0.15)

        c.rpc("flagd", "ResolveBoolean", resolve, {"feature_flag.key": flag})

    # --- one user request -------------------------------------------------------------------
    def request(self, t: int) -> None:
        """One load-generator request arriving at the frontend-proxy at ``t`` (ns)."""
        self.requests += 1
        i = min(bisect.bisect_left(self.cum, self.rng.random()), len(self.cum) - 1)
        _, handler, method, route, upstream = self.flows[i]
        attrs: dict[str, AnyValue] = {"http.request.method": method, "http.route": route, "url.path": route, "url.scheme": "http",
                 "server.address": "frontend-proxy", "server.port": 8080, "user_agent.original": "python-requests/2.32",
                 "upstream_cluster": upstream}  # fmt: skip
        p_inst = self.pick("frontend-proxy")
        proxy = self._start(
            "frontend-proxy", f"{method} {route}", SpanKind.SERVER, None, t, attrs, inst=p_inst
        )
        edge = Call(self, "frontend-proxy", route, proxy, t, p_inst)
        edge.work(0.3)
        t0 = edge.t
        s_attrs: dict[str, AnyValue] = {"http.request.method": method, "http.route": route, "url.path": route, "url.scheme": "http",
                   "server.address": upstream, "server.port": SERVICES[upstream].port}  # fmt: skip
        u_inst = self.pick(upstream)
        server = self._start(
            upstream, f"{method} {route}", SpanKind.SERVER, edge.ctx, t0, s_attrs, inst=u_inst
        )
        call = Call(self, upstream, route, server, t0, u_inst)
        self._serve(call, handler)
        server.set_attribute("http.response.status_code", 200 if call.ok else 500)
        server.end(end_time=call.t)
        edge.t = call.t + self._net()
        proxy.set_attribute("http.response.status_code", 200 if call.ok else 500)
        if not call.ok:
            proxy.set_status(Status(StatusCode.ERROR, "upstream 500"))
        proxy.end(end_time=edge.t)

    # --- flows (frontend handlers) ------------------------------------------------------------
    def _product_id(self) -> str:
        return PRODUCTS[int(self.rng.random() * len(PRODUCTS))]

    def h_get_product(self, c: Call) -> None:
        c.work(0.6)
        if self.rng.random() < 0.2:
            c.db("postgresql", "SELECT", "products", "postgresql", 1.5)

    def h_list_products(self, c: Call) -> None:
        c.work(1.2)
        if self.rng.random() < 0.2:
            c.db("postgresql", "SELECT", "products", "postgresql", 2.5)
        pat = self.eff.patterns
        for _ in range(int(pat.get("n_plus_one", 0))):  # one query per product: N+1
            c.db("postgresql", "SELECT", "product_reviews", "postgresql", 10.0)
        if pat.get("slow_query") and self.rng.random() < 0.2:
            c.db("postgresql", "SELECT", "product_search", "postgresql", pat["slow_query"])

    def h_convert(self, c: Call) -> None:
        c.work(0.25)

    def f_product(self, c: Call) -> None:
        c.work(2.0)
        pid = self._product_id()
        if c.rpc("product-catalog", "GetProduct", self.h_get_product, {"app.product.id": pid}):
            for _ in range(int(self.eff.patterns.get("chatty_dependency", 1))):
                c.rpc(
                    "currency",
                    "Convert",
                    self.h_convert,
                    {"app.currency.conversion.to": self.rng.choice(CURRENCIES)},
                )
        reviews = self.eff.patterns.get("new_dependency", 0.0) + self.eff.patterns.get(
            "vanished_dependency", 0.0
        )
        if reviews and self.rng.random() < reviews:  # the product's reviews, from a third-party API
            c.external(REVIEWS_API, "GET", f"/v1/products/{pid}/reviews", 25.0)
        ms = self.eff.patterns.get("sequential_calls")
        if ms:  # independent calls made one after another
            for callee, method, handler in (
                ("recommendation", "ListRecommendations", self.h_recommend),
                ("ad", "GetAds", self.h_ads),
                ("shipping", "GetQuote", self.h_ship_quote),
            ):
                c.rpc(callee, method, self._slowed(handler, ms))

    @staticmethod
    def _slowed(handler: Handler, ms: float) -> Handler:
        def run(s: Call) -> None:
            handler(s)
            s.work(ms, 0.1)

        return run

    def f_products(self, c: Call) -> None:
        c.work(2.5)
        c.rpc("product-catalog", "ListProducts", self.h_list_products)

    def h_recommend(self, c: Call) -> None:
        self.flag(c, "recommendationCacheFailure")
        c.work(1.5)
        c.rpc("product-catalog", "ListProducts", self.h_list_products)
        t0, end = c.t, c.t
        for _ in range(int(self.eff.patterns.get("fan_out", 0))):  # concurrent calls: fan-out
            c.t = t0 + int(self.rng.random() * 0.3 * MS)
            c.rpc("product-catalog", "GetProduct", self.h_get_product, {"app.product.id": self._product_id()})
            end = max(end, c.t)
        c.t = end

    def f_recommendations(self, c: Call) -> None:
        c.work(1.5)
        c.rpc("recommendation", "ListRecommendations", self.h_recommend)

    def h_ads(self, c: Call) -> None:
        self.flag(c, "adFailure")
        c.work(1.0)

    def f_ads(self, c: Call) -> None:
        c.work(1.0)
        c.rpc("ad", "GetAds", self.h_ads)

    def h_get_cart(self, c: Call) -> None:
        c.work(0.4)
        c.db("redis", "HGET", "cart", "valkey-cart", 0.3, "HGET")

    def h_add_item(self, c: Call) -> None:
        self.flag(c, "cartFailure")
        c.work(0.4)
        c.db("redis", "HSET", "cart", "valkey-cart", 0.3, "HSET")
        c.db("redis", "EXPIRE", "cart", "valkey-cart", 0.2, "EXPIRE")

    def h_empty_cart(self, c: Call) -> None:
        self.flag(c, "cartFailure")
        c.work(0.3)
        c.db("redis", "HSET", "cart", "valkey-cart", 0.3, "HSET")

    def f_get_cart(self, c: Call) -> None:
        c.work(1.2)
        c.rpc("cart", "GetCart", self.h_get_cart)

    def f_add_cart(self, c: Call) -> None:
        c.work(1.5)
        if c.rpc("product-catalog", "GetProduct", self.h_get_product, {"app.product.id": self._product_id()}):
            c.rpc("cart", "AddItem", self.h_add_item)

    def h_quote(self, c: Call) -> None:
        c.work(1.8)

    def h_ship_quote(self, c: Call) -> None:
        c.work(0.5)
        c.http("quote", "POST", "/getquote", self.h_quote)
        p = self.eff.patterns.get("dependency_cycle", 0.0)
        if p and c.shop.rng.random() < p:  # shipping calls back into checkout: a cycle
            c.rpc("checkout", "GetOrderStatus", self.h_convert)

    def h_ship_order(self, c: Call) -> None:
        c.work(0.6)

    def f_shipping(self, c: Call) -> None:
        c.work(1.0)
        c.rpc("shipping", "GetQuote", self.h_ship_quote)

    def h_currencies(self, c: Call) -> None:
        c.work(0.2)

    def f_currency(self, c: Call) -> None:
        c.work(0.8)
        c.rpc("currency", "GetSupportedCurrencies", self.h_currencies)

    def f_image(self, c: Call) -> None:
        c.work(0.9, 0.6)

    def h_charge(self, c: Call) -> None:
        self.flag(c, "paymentFailure")
        c.work(3.0)
        if c.ok:
            self.log("payment", c, "INFO", "Transaction complete.", {"app.payment.amount": 100.0})

    def _charge(self, c: Call) -> bool:
        p = self.eff.patterns.get("retry_storm", 0.0)
        if not p:
            return c.rpc("payment", "Charge", self.h_charge)

        def flaky(s: Call) -> None:
            self.h_charge(s)
            if self.rng.random() < p:
                s.ok, s.error = False, "card processor timeout"

        for _ in range(4):  # retried right away, no backoff: a retry storm
            if c.rpc("payment", "Charge", flaky):
                c.ok, c.error = True, ""
                return True
        return False

    def h_email(self, c: Call) -> None:
        c.work(4.0)
        self.log("email", c, "INFO", "Order confirmation email sent")

    def f_checkout(self, c: Call) -> None:
        c.work(2.0)
        c.rpc("checkout", "PlaceOrder", self.h_place_order)

    def h_place_order(self, c: Call) -> None:
        c.work(0.8)
        if not c.rpc("cart", "GetCart", self.h_get_cart):
            return
        for _ in range(1 + int(self.rng.random() * 3)):
            if not c.rpc(
                "product-catalog", "GetProduct", self.h_get_product, {"app.product.id": self._product_id()}
            ):
                return
            c.rpc("currency", "Convert", self.h_convert)
        if not c.rpc("shipping", "GetQuote", self.h_ship_quote):
            return
        if not self._charge(c):
            return
        if not c.rpc("shipping", "ShipOrder", self.h_ship_order):
            return
        c.rpc("cart", "EmptyCart", self.h_empty_cart)
        order = f"{self.rng.getrandbits(64):016x}"
        c.http("email", "POST", "/send_order_confirmation", self.h_email)
        self.log("checkout", c, "INFO", f"order placed: {order}", {"app.order.id": order})
        self.produce(c, order)

    def produce(self, c: Call, order: str) -> None:
        attrs: dict[str, AnyValue] = {"messaging.system": "kafka", "messaging.destination.name": "orders",
                 "messaging.operation.type": "send", "messaging.operation.name": "publish",
                 "messaging.operation": "publish", "server.address": "kafka", "server.port": 9092,
                 "messaging.kafka.message.key": order}  # fmt: skip
        producer = self._start(
            "checkout", "orders publish", SpanKind.PRODUCER, c.ctx, c.t, attrs, inst=c.inst
        )
        c.t += int(0.4 * MS)
        producer.end(end_time=c.t)
        link = [Link(producer.get_span_context(), {"messaging.operation.type": "send"})]
        lag = int(self.eff.consumer_lag_s * 1e9 * (0.8 + 0.4 * self.rng.random()))
        for group in ("accounting", "fraud-detection"):
            t0 = c.t + int((1 + 9 * self.rng.random()) * MS) + lag
            cattrs: dict[str, AnyValue] = {"messaging.system": "kafka", "messaging.destination.name": "orders",
                      "messaging.operation.type": "process", "messaging.operation.name": "process",
                      "messaging.operation": "process", "messaging.consumer.group.name": group,
                      "messaging.kafka.consumer.group": group, "messaging.kafka.message.key": order}  # fmt: skip
            # accounting continues the producer's trace; fraud-detection starts a new one and links.
            parent = set_span_in_context(producer) if group == "accounting" else None
            inst = self.pick(group)
            span = self._start(group, "orders process", SpanKind.CONSUMER, parent, t0, cattrs, link, inst)
            call = Call(self, group, "orders process", span, t0, inst)
            call.work(1.5 if group == "accounting" else 3.0)
            if group == "accounting":
                call.db("postgresql", "INSERT", "orders", "postgresql", 2.0)
            self.log(group, call, "INFO", f"consumed order {order}", {"app.order.id": order})
            span.end(end_time=call.t)
