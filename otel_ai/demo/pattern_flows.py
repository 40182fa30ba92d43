"""The planted apps' request flows (gateway → web → orders, users, inventory, payments; kafka →
billing), each consulting the plant (see ``patterns``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from otel_ai.demo.pattern_app import MS, SERVER, Builder, Call

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
