"""Random applications with one insight kind planted: the unseen-app source of the insight evaluation.

Nobody tuned the detectors on these. Per seed, :func:`build` draws a new application: 6-30
services with made-up names in a random call DAG (random depths and fan-outs; some services with
a second caller), 1-3 entry routes whose traffic shares span two orders of magnitude, per-call
probabilities (so volumes fall over orders of magnitude down the graph), self-times, calls over
gRPC or HTTP, run one after the other or side by side, uninstrumented peers (a SQL database, a
cache, an external API) and a queue between a producer and a consumer service. Instances (1-3 per
service) are assigned after the traffic is generated, from each service's measured share of the
window's traces, so that the labels are true by construction: a service on more than 35 % of the
traces runs 2-3 instances unless a single point of failure is planted on it.

One kind is then planted at a random place with a random magnitude, either clearly over the
detector's documented threshold (``positive``: a :class:`Planted` the detector must find) or
clearly under it / structurally different (``negative``: a near miss that must *not* be reported,
so precision is tested), e.g. an N+1 loop of 4 calls or of 8 calls totalling 30 ms, sequential
calls that would save 50 ms, calls made concurrently, a single retry, a caught error, a queue lag
of 300 ms, a call back to a sibling instead of an ancestor. ``"clean"`` plants nothing.

The spans are :class:`otel_ai.demo.pattern_app.PSpan`s in an :class:`App`, so the evaluation
sends them like the planted shop apps (``App.requests()``). Used by ``bench/insights_eval.py
--source random`` and ``tests/insights/test_random_apps.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from otel_ai.demo.pattern_app import MS, SERVER, App, Builder, Call, Instance, Planted

KINDS = ("n_plus_one", "sequential_calls", "fan_out", "retry_storm", "chatty_dependency", "dependency_cycle",
         "critical_path_hotspot", "error_propagation", "single_point_of_failure", "slow_query", "queue_lag",
         "new_dependency", "vanished_dependency", "encoding_drift", "sdk_drift")  # fmt: skip
# Kinds with a near-miss variant (the drifts have none: an odd instance is an odd instance).
NEGATIVE_KINDS = tuple(
    k for k in KINDS if k not in ("encoding_drift", "sdk_drift", "single_point_of_failure")
)
_SYL = ("ka", "lo", "mi", "ra", "ven", "tor", "zu", "pel", "qua", "nix", "dor", "fen", "sil", "bra", "ko", "mar",
        "tel", "vi", "os", "gan", "rue", "hal", "jin", "cor")  # fmt: skip
_CONCURRENT = ("rpc", "db", "leafcall", "slowcall")
_SUFFIX = ("", "", "-svc", "-api", "d", "-core", "-worker", "-gw")


@dataclass
class RandomApp(App):
    """A random app; ``negative`` names the kind of a planted near miss (nothing to find)."""

    negative: str | None = None
    near: Planted | None = None  # the near miss's place and magnitude (for the report)
    # Kinds the plant may also cause at other places (a slowed service makes its callers' sequential
    # calls long): scored only where they name the planted place as theirs.
    elsewhere: set[str] = field(default_factory=set)
    services: list[str] = field(default_factory=list)


@dataclass
class Step:
    """One thing a service's handler does per request, with probability ``p``."""

    kind: str  # rpc | http | db | ext | produce | loop | repeat | callback
    target: str  # callee service, db system, host, topic
    op: str
    p: float = 1.0
    ms: float = 1.0
    n: int = 1  # loop: calls; repeat: attempts
    catch: bool = False  # a failed call is handled: the caller does not fail
    via: str = "db"
    when: Callable[[int], bool] | None = None  # extra condition on the request's time (ns)
    group: int = 0  # steps of one group (> 0) are made together or not at all on a request


@dataclass
class Svc:
    name: str
    self_ms: float
    steps: list[Step] = field(default_factory=list)
    parallel: bool = False  # calls its services and peers side by side
    extra_ms: float = 0.0  # a planted hotspot's added self-time
    extra_p: float = 0.0
    fail_p: float = 0.0  # a planted error origin


class Model:
    """The drawn application before traffic: services, steps, routes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        used: set[str] = set()
        n = rng.randint(6, 30)
        self.svcs: dict[str, Svc] = {}
        self.order: list[str] = []
        for _ in range(n):
            self._add(self._name(used), rng.uniform(0.3, 4.0))
        names = self.order
        self.root = names[0]
        self.parent: dict[str, str] = {}
        for i, s in enumerate(names[1:], start=1):
            # Random depth: a parent among the earlier services, biased to recent ones (deep) or to
            # the first ones (wide) per app.
            lo = 0 if rng.random() < 0.5 else max(0, i - 3)
            par = names[rng.randint(lo, i - 1)]
            self.parent[s] = par
            self.svcs[par].steps.append(self._call(s, rng.uniform(0.3, 1.0)))
        for i, s in enumerate(names[2:], start=2):  # a second caller for some
            if rng.random() < 0.15:
                other = names[rng.randint(0, i - 1)]
                if other != self.parent[s]:
                    self.svcs[other].steps.append(self._call(s, rng.uniform(0.05, 0.5)))
        self.db = rng.choice(("postgresql", "mysql"))
        self.dbns = self._syl(2)
        self.cache = rng.choice(("redis", "memcached"))
        self.host = f"api.{self._syl(2)}.example"
        for s in names:
            r = rng.random()
            if r < 0.35:
                table = self._syl(2)
                self.svcs[s].steps.append(Step("db", self.db, f"SELECT * FROM {table} WHERE id = {{n}}",
                                               rng.uniform(0.3, 1.0), rng.uniform(0.5, 4.0)))  # fmt: skip
            elif r < 0.55:
                self.svcs[s].steps.append(
                    Step("db", self.cache, "GET", rng.uniform(0.3, 1.0), rng.uniform(0.2, 1.0))
                )
        ext_caller = rng.choice(names[1:])
        self.svcs[ext_caller].steps.append(Step("ext", self.host, "/v1/" + self._syl(1), rng.uniform(0.2, 1.0),
                                                rng.uniform(2.0, 6.0)))  # fmt: skip
        for s in names:
            rng.shuffle(self.svcs[s].steps)
            # Side by side: 2-7 calls (10 or more in flight at once would be a fan-out).
            self.svcs[s].parallel = 1 < len(self.svcs[s].steps) < 8 and rng.random() < 0.3
        # The queue: a producer (not the entry) and its consumer service.
        self.producer = rng.choice(names[1:])
        self.consumer = f"{self.producer}-consumer"
        self._add(self.consumer, rng.uniform(0.3, 3.0))
        self.topic = self._syl(2)
        self.svcs[self.producer].steps.append(Step("produce", self.topic, "publish", rng.uniform(0.3, 1.0)))
        self.lag_ms = (2.0, 30.0)
        self.lag_linked = rng.random() < 0.5
        # Entry routes: the root's steps split over 1-3 routes with shares over two orders of magnitude.
        k = min(rng.randint(1, 3), max(1, len(self.svcs[self.root].steps)))
        self.routes = [f"/{self._syl(1)}{i}" for i in range(k)]
        w = [10 ** rng.uniform(-2, 0) for _ in range(k)]
        self.weights = [x / sum(w) for x in w]
        self.route_of: dict[int, int] = {}
        for j in range(len(self.svcs[self.root].steps)):
            self.route_of[j] = j % k if j < k else rng.randrange(k)

    # -- drawing helpers ------------------------------------------------------------------------
    def _syl(self, n: int) -> str:
        return "".join(self.rng.choice(_SYL) for _ in range(n))

    def _name(self, used: set[str]) -> str:
        while True:
            name = self._syl(self.rng.randint(2, 3)) + self.rng.choice(_SUFFIX)
            if name not in used:
                used.add(name)
                return name

    def _add(self, name: str, self_ms: float) -> Svc:
        svc = Svc(name, self_ms)
        self.svcs[name] = svc
        self.order.append(name)
        return svc

    def leaf(self, self_ms: float | None = None) -> str:
        """A new service with no calls of its own."""
        return self._add(self._name(set(self.svcs)), self_ms or self.rng.uniform(0.3, 2.0)).name

    def _call(self, callee: str, p: float) -> Step:
        verb = self.rng.choice(("Get", "List", "Check", "Compute", "Update", "Find"))
        if self.rng.random() < 0.5:
            return Step("rpc", callee, f"{verb}{self._syl(1).capitalize()}", p)
        return Step("http", callee, f"/{self._syl(1)}/{{id}}", p)

    # -- reach ----------------------------------------------------------------------------------
    def reach(self) -> dict[str, float]:
        """Expected share of entry requests reaching each service (independent calls)."""
        r = dict.fromkeys(self.svcs, 0.0)
        r[self.root] = 1.0
        for s in self.order:
            steps = self.svcs[s].steps
            for j, st in enumerate(steps):
                if st.kind in ("rpc", "http", "loop", "repeat") and st.target in r and st.target != s:
                    w = self.weights[self.route_of[j]] if s == self.root else 1.0
                    r[st.target] = 1 - (1 - r[st.target]) * (1 - r[s] * w * st.p)
            for st in steps:
                if st.kind == "produce":
                    r[self.consumer] = 1 - (1 - r[self.consumer]) * (1 - r[s] * st.p)
        return r

    def primary_reach(self) -> dict[str, float]:
        """Expected share of entry requests reaching each service through its first caller's chain
        (so every edge up that chain carries at least that much traffic)."""
        pr = dict.fromkeys(self.svcs, 0.0)
        pr[self.root] = 1.0
        for s in self.order:
            par = self.parent.get(s)
            if par is None:
                continue
            for j, st in enumerate(self.svcs[par].steps):
                if st.target == s and st.kind in ("rpc", "http"):
                    w = self.weights[self.route_of[j]] if par == self.root else 1.0
                    pr[s] = max(pr[s], pr[par] * w * st.p)
        return pr

    def busy(self, at_least: float, *, exclude_root: bool = True) -> str:
        """A random service reached by at least ``at_least`` of the requests (the busiest if none)."""
        r = self.reach()
        cands = [s for s in self.order if r[s] >= at_least and not (exclude_root and s == self.root)
                 and s != self.consumer]  # fmt: skip
        if cands:
            return self.rng.choice(cands)
        # Nothing that busy (most traffic on a route that calls little): the entry calls the
        # busiest other service on every route, so the plant is not below the detector's minimum.
        best = max((s for s in self.order if s != self.root and s != self.consumer), key=lambda s: r[s])
        root = self.svcs[self.root]
        for route in range(len(self.routes)):
            self.route_of[len(root.steps)] = route
            root.steps.append(self._call(best, 1.0))
        return best

    def related(self) -> dict[str, set[str]]:
        """Descendants of every service over the call steps."""
        out: dict[str, set[str]] = {}
        for s in reversed(self.order):
            d: set[str] = set()
            for st in self.svcs[s].steps:
                if st.kind in ("rpc", "http") and st.target in self.svcs and st.target not in d:
                    d |= {st.target} | out.get(st.target, set())
            if s == self.producer:
                d |= {self.consumer}
            out[s] = d
        return out


# ---------------------------------------------------------------------------------------------
# Traffic
# ---------------------------------------------------------------------------------------------


class Flows:
    def __init__(self, m: Model, b: Builder, app: RandomApp) -> None:
        self.m, self.b, self.rng, self.app = m, b, b.rng, app
        self.window_ns = int(app.start.timestamp() * 1e9)

    def handle(self, c: Call, service: str, route: int | None = None) -> None:
        svc = self.m.svcs[service]
        c.work(svc.self_ms * self.rng.lognormvariate(0, 0.3))
        if svc.extra_p and self.rng.random() < svc.extra_p:
            c.work(svc.extra_ms * self.rng.uniform(0.9, 1.1))
        t0, end = c.t, c.t
        drawn: dict[int, bool] = {}
        for j, st in enumerate(svc.steps):
            if route is not None and self.m.route_of[j] != route:
                continue
            made = (
                drawn.setdefault(st.group, self.rng.random() < st.p) if st.group else self.rng.random() < st.p
            )
            if not made or (st.when is not None and not st.when(self.b.now)):
                continue
            if svc.parallel and st.kind in _CONCURRENT:
                end = max(end, self.step(c, st, at=t0 + int(self.rng.uniform(0, 0.3) * MS)))
            else:
                if svc.parallel:
                    c.t = max(c.t, end)
                self.step(c, st)
                end = max(end, c.t)
        c.t = max(c.t, end)
        if svc.fail_p and self.rng.random() < svc.fail_p:
            c.ok = False

    def _handler(self, service: str) -> Callable[[Call], object]:
        return lambda s: self.handle(s, service)

    def step(self, c: Call, st: Step, at: int | None = None) -> int:
        rng = self.rng
        if st.kind == "rpc":
            ok, end = c.rpc(st.target, st.op, self._handler(st.target), at=at)
            if at is not None and not ok and not st.catch:
                c.ok = False
            if st.catch:
                c.ok = True
            return end
        if st.kind == "http":
            path = st.op.replace("{id}", str(rng.randint(1, 99999)))
            c.http(st.target, "GET", st.op, path, self._handler(st.target))
            if st.catch:
                c.ok = True
            return c.t
        if st.kind == "db":
            stmt = st.op.replace("{n}", str(rng.randint(1, 99999)))
            ns = "" if st.target in ("redis", "memcached") else self.m.dbns
            op = "GET" if ns == "" else stmt.split()[0]
            return c.db(st.target, ns, stmt, st.ms, at=at, op=op)
        if st.kind == "ext":
            c.external(st.target, "POST", st.op, st.ms)
            return c.t
        if st.kind == "produce":
            lo, hi = self.m.lag_ms
            in_window = self.b.now >= self.window_ns
            lag = rng.uniform(lo, hi) if in_window else rng.uniform(2.0, 30.0)
            consumer = self.m.consumer
            c.produce(self.m.topic, consumer, lag, linked=self.m.lag_linked, handler=self._handler(consumer))
            return c.t
        if st.kind == "loop":  # N calls of one statement / route, one after the other
            for _ in range(st.n):
                if st.via == "db":
                    c.db(self.m.db, self.m.dbns, st.op.replace("{n}", str(rng.randint(1, 99999))), st.ms)
                else:
                    c.http(st.target, "GET", st.op, st.op.replace("{id}", str(rng.randint(1, 99999))),
                           lambda s: s.work(st.ms))  # fmt: skip
            return c.t
        if st.kind == "chatty":  # N distinct operations of one service
            for i in range(st.n):
                c.rpc(st.target, f"{st.op}{i}", lambda s: s.work(rng.uniform(0.2, 1.0)))
            return c.t
        if st.kind == "repeat":  # attempts: all but the last fail
            for attempt in range(st.n):
                last = attempt == st.n - 1
                ok, _ = c.rpc(st.target, st.op, lambda s: s.work(st.ms), fail=not last)
                if ok:
                    c.ok = True
            return c.t
        if st.kind == "leafcall":  # a call served without the callee's own steps (cycle plants)
            ok, end = c.rpc(st.target, st.op, lambda s: s.work(st.ms), at=at)
            return end
        if st.kind == "slowcall":  # sequential-calls plant: a call that takes st.ms
            ok, end = c.rpc(st.target, st.op, lambda s: s.work(st.ms * rng.uniform(0.9, 1.1)), at=at)
            return end
        raise ValueError(st.kind)

    def request(self, t: int) -> None:
        b, m = self.b, self.m
        b.now = t
        route = self.rng.choices(range(len(m.routes)), weights=m.weights)[0]
        trace = b._id(16)
        path = m.routes[route]
        root = b.span(trace, b"", m.root, f"GET {path}", SERVER, t,
                      attrs={"http.request.method": "GET", "http.route": path})  # fmt: skip
        c = Call(b, trace, root)
        self.handle(c, m.root, route)
        c.finish()


# ---------------------------------------------------------------------------------------------
# Plants: each returns (planted entity, consequences) and edits the model
# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    kind: str
    positive: bool
    entity: str = ""
    consequences: set[str] = field(default_factory=set)
    elsewhere: set[str] = field(default_factory=set)
    params: dict[str, Any] = field(default_factory=dict)
    spof: str | None = None
    odd: str | None = None  # drift: the service whose first instance differs
    deploy: tuple[str, int] | None = None  # (service, at ns)


def _plant(m: Model, plan: Plan, start_ns: int, length_ns: int) -> None:
    rng, k, pos = m.rng, plan.kind, plan.positive
    cp = "critical_path_hotspot"
    if k in ("n_plus_one", "sequential_calls", "fan_out", "chatty_dependency", "critical_path_hotspot",
             "slow_query", "retry_storm"):  # fmt: skip
        plan.elsewhere.add("sequential_calls")  # the slowed service's callers
    if k == "n_plus_one":
        s = m.busy(0.08)
        via = rng.choice(("db", "http"))
        if pos:
            n, total = rng.randint(5, 14), rng.uniform(60, 300)
        elif rng.random() < 0.5:
            n, total = rng.randint(2, 4), rng.uniform(70, 200)
        else:
            n, total = rng.randint(5, 10), rng.uniform(10, 40)
        if not pos and total < 50:
            via = "db"  # an HTTP call's own overhead (client and server spans) would add up to 50 ms
        target = m.db if via == "db" else m.leaf()
        op = f"SELECT * FROM {m._syl(2)} WHERE parent_id = {{n}}" if via == "db" else f"/{m._syl(2)}/{{id}}"
        m.svcs[s].steps.append(Step("loop", target, op, rng.uniform(0.6, 1.0), total / n, n=n, via=via))
        plan.entity, plan.params = s, {"calls": n, "total_ms": round(total, 1), "via": via}
        plan.consequences |= {cp, "slow_query", "chatty_dependency"}
    elif k == "sequential_calls":
        s = m.busy(0.08)
        n = rng.randint(2, 4)
        while True:
            durs = [rng.uniform(40, 200) for _ in range(n)]
            saving = sum(durs) - max(durs)
            if (
                (pos and 110 <= saving <= 450)
                or (not pos and 20 <= saving <= 80)
                or (not pos and saving >= 130)
            ):
                break
        concurrent = not pos and saving >= 130
        svc = m.svcs[s]
        if concurrent:  # the same calls made side by side
            svc.parallel = True
        p = rng.uniform(0.6, 1.0)
        for d in durs:
            svc.steps.append(Step("slowcall", m.leaf(), f"Fetch{m._syl(1).capitalize()}", p, d))
        if not concurrent:
            svc.parallel = False
        plan.entity, plan.params = s, {"calls": n, "saving_ms": round(saving, 1), "concurrent": concurrent}
        plan.consequences |= {cp}
    elif k == "fan_out":
        s = m.busy(0.08)
        svc = m.svcs[s]
        # The service's own side-by-side calls count too: a near miss stays at 8 in flight at most.
        already = sum(st.kind in _CONCURRENT for st in svc.steps)  # concurrent from now on
        n = rng.randint(10, 25) if pos else max(1, rng.randint(3, 8) - already)
        svc.parallel = True
        p = rng.uniform(0.5, 1.0)  # of the requests make the whole fan-out (one group)
        if rng.random() < 0.5:
            base = m._syl(2)
            for i in range(n):
                svc.steps.append(
                    Step(
                        "leafcall",
                        m._add(f"{base}-shard-{i}", 1.0).name,
                        "Search",
                        p,
                        rng.uniform(5, 25),
                        group=1,
                    )
                )
        else:
            for i in range(n):
                svc.steps.append(Step("db", "cassandra", f"SELECT * FROM items WHERE bucket = {i}", p,
                                      rng.uniform(5, 25), group=1))  # fmt: skip
        plan.entity, plan.params = s, {"calls": n}
        plan.consequences |= {cp}
    elif k == "retry_storm":
        s = m.busy(0.08)
        callee = m.leaf()
        n = rng.randint(3, 6) if pos else 2
        m.svcs[s].steps.append(Step("repeat", callee, f"Charge{m._syl(1).capitalize()}", rng.uniform(0.4, 1.0),
                                    rng.uniform(1, 10), n=n))  # fmt: skip
        plan.entity, plan.params = callee, {"attempts": n}
        plan.consequences |= {"error_propagation"}
    elif k == "chatty_dependency":
        s = m.busy(0.08)
        callee = m.leaf()
        n = rng.randint(10, 30) if pos else rng.randint(3, 7)
        m.svcs[s].steps.append(Step("chatty", callee, m._syl(1).capitalize(), rng.uniform(0.6, 1.0), n=n))
        plan.entity, plan.params = f"{s}->{callee}", {"calls": n}
        plan.consequences |= {cp}
    elif k == "dependency_cycle":
        r, pr = m.reach(), m.primary_reach()
        # Every edge of the cycle must carry traffic: the caller is reached through its first
        # callers' chain (the cycle's way back) on at least 8 % of the requests.
        deep = [s for s in m.order if s in m.parent and pr[s] >= 0.08]
        caller = rng.choice(deep) if deep else m.busy(0.0)
        # A third of the cycles close through the queue: the consumer, in a trace of its own (a span
        # link to the producer), calls back the producer or one of its callers.
        via_queue = pos and pr[m.producer] >= 0.1 and r[m.consumer] >= 0.08 and rng.random() < 0.33
        if via_queue:
            caller, m.lag_linked = m.consumer, True
        ancestors = [m.producer] if via_queue else []
        up = m.parent.get(ancestors[0] if via_queue else caller)
        while up is not None:
            ancestors.append(up)
            up = m.parent.get(up)
        if pos:
            target = rng.choice(ancestors)
        else:
            rel = m.related()
            others = [
                x
                for x in m.order
                if x != caller and caller not in rel[x] and x not in rel[caller] and x != m.consumer
            ]
            target = rng.choice(others) if others else m.leaf()
        m.svcs[caller].steps.append(
            Step("leafcall", target, "Notify", rng.uniform(0.5, 1.0), rng.uniform(0.3, 2))
        )
        plan.entity, plan.params = (
            target,
            {"caller": caller, "length": ancestors.index(target) + 2 if pos else 0, "via_queue": via_queue},
        )
    elif k == "critical_path_hotspot":
        s = m.busy(0.6)
        svc = m.svcs[s]
        svc.extra_ms = rng.uniform(150, 500) if pos else rng.uniform(5, 25)
        svc.extra_p = rng.uniform(0.8, 1.0)
        plan.entity, plan.params = s, {"ms": round(svc.extra_ms, 1)}
    elif k == "error_propagation":
        s = m.busy(0.3)  # at least ~2x min_traces failing requests in the window
        m.svcs[s].fail_p = rng.uniform(0.2, 0.5)
        if not pos:  # every caller handles the failure
            for other in m.svcs.values():
                for st in other.steps:
                    if st.target == s:
                        st.catch = True
        plan.entity, plan.params = s, {"share": round(m.svcs[s].fail_p, 3), "caught": not pos}
    elif k == "single_point_of_failure":
        s = m.busy(0.7, exclude_root=False)
        plan.spof = plan.entity = s
    elif k == "slow_query":
        s = m.busy(0.4)  # the statement runs on 15-40 % of its requests: >= ~2x min_calls
        ms = rng.uniform(600, 3000) if pos else rng.uniform(20, 70)
        m.svcs[s].steps.append(Step("db", m.db, f"SELECT * FROM {m._syl(2)} WHERE created_at > {{n}} ORDER BY "
                                    "created_at", rng.uniform(0.15, 0.4), ms))  # fmt: skip
        plan.entity, plan.params = s, {"ms": round(ms, 1)}
        plan.consequences |= {cp}
    elif k == "queue_lag":
        # A busy producer (at least ~2x min_messages messages in the window): the queue moves there.
        busy = m.busy(0.3)
        produce = next(st for st in m.svcs[m.producer].steps if st.kind == "produce")
        m.svcs[m.producer].steps.remove(produce)
        produce.p = max(produce.p, 0.6)
        m.svcs[busy].steps.append(produce)
        m.producer = busy
        lo = rng.uniform(1500, 20000) if pos else rng.uniform(100, 500)
        m.lag_ms = (lo, lo * (1.5 if pos else 1.3))
        plan.entity, plan.params = m.consumer, {"lag_ms": m.lag_ms, "linked": m.lag_linked}
    elif k in ("new_dependency", "vanished_dependency"):
        s = m.busy(0.25)
        target = m.leaf() if rng.random() < 0.5 else f"api.{m._syl(2)}.example"
        deploy = rng.random() < 0.5
        at = start_ns + int(length_ns * rng.uniform(0.2, 0.6)) if deploy else start_ns
        new = k == "new_dependency"
        count = [0]
        limit = 10**9 if pos else rng.randint(1, 3)

        def when(t: int) -> bool:
            if (t >= at) != new:
                return False
            count[0] += 1
            return count[0] <= limit

        kind = "leafcall" if target in m.svcs else "ext"
        m.svcs[s].steps.append(Step(kind, target, "Verify" if kind == "leafcall" else "/v1/verify", 1.0,
                                    rng.uniform(1, 5), when=when))  # fmt: skip
        if deploy:
            plan.deploy = (s, at)
        plan.entity, plan.params = (
            f"{s}->{target}",
            {"deploy": deploy, "calls_cap": limit if not pos else None},
        )
    elif k in ("encoding_drift", "sdk_drift"):
        s = m.busy(0.2, exclude_root=False)
        plan.odd = plan.entity = s
    else:
        raise ValueError(f"unknown kind {k!r}")


# ---------------------------------------------------------------------------------------------
# Building an app
# ---------------------------------------------------------------------------------------------


def build(kind: str, seed: int, start: datetime, window: timedelta = timedelta(minutes=15), *,
          positive: bool = True, traces: int | None = None) -> RandomApp:  # fmt: skip
    """A random app (drawn from ``seed``) with ``kind`` planted (``"clean"``: nothing) over
    ``[start, start + window)``, traffic also in the window before; ``positive=False`` plants a
    near miss of that kind instead."""
    if kind != "clean" and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: clean, {', '.join(KINDS)}")
    rng = random.Random(f"random-app/{seed}/{kind}")  # a near miss is planted in the same app
    m = Model(rng)
    label = "clean" if kind == "clean" else f"{kind}{'' if positive else '~near'}"
    prng = random.Random(f"random-app/{seed}/{label}")
    m.rng = prng
    app = RandomApp(kind if positive else f"{kind}~near", seed, start, start + window)
    length = int(window.total_seconds() * 1e9)
    t_start = int(start.timestamp() * 1e9)
    plan = Plan(kind, positive)
    if kind != "clean":
        _plant(m, plan, t_start, length)
    placeholder = {s: [Instance(s, f"{s}-0")] for s in m.svcs}
    b = Builder(app, prng, placeholder)
    flows = Flows(m, b, app)
    n = traces or prng.randint(120, 240)
    for p0 in (t_start - length, t_start):
        for t in sorted(p0 + int(prng.random() * (length - 90 * 10**9)) for _ in range(n)):
            flows.request(t)
    _assign_instances(app, m, plan, prng, t_start)
    app.services = list(m.svcs)
    if kind != "clean":
        if positive:
            app.planted.append(Planted(kind, plan.entity, plan.params))
        else:
            app.negative = kind
            app.near = Planted(kind, plan.entity, plan.params)
        app.consequences |= plan.consequences
        app.elsewhere |= plan.elsewhere
    return app


def _assign_instances(app: RandomApp, m: Model, plan: Plan, rng: random.Random, window_ns: int) -> None:
    """Instances from the measured traffic shares (see the module docstring); a span runs on its
    parent's instance when the parent is of the same service."""
    traces: dict[str, set[bytes]] = {}
    roots = set()
    for s in app.spans:
        if s.start >= window_ns:
            traces.setdefault(s.instance.service, set()).add(s.trace_id)
            if not s.parent_id:
                roots.add(s.trace_id)
    total = max(1, len(roots))
    insts: dict[str, dict[str, list[Instance]]] = {}
    for name in m.svcs:
        share = len(traces.get(name, ())) / total
        if plan.spof == name:
            n = 1
        elif plan.odd == name or share >= 0.35:
            n = rng.randint(2, 3)
        else:
            n = rng.randint(1, 3)
        versions = ["1.0.0"] + (["2.0.0"] if plan.deploy and plan.deploy[0] == name else [])
        insts[name] = {}
        for v in versions:
            lst = [Instance(name, f"{name}-{v[0]}-{rng.getrandbits(24):06x}", version=v) for _ in range(n)]
            if plan.odd == name:
                first = lst[0]
                if plan.kind == "encoding_drift":
                    lst[0] = Instance(name, first.instance_id, v, encoding="json")
                else:
                    lst[0] = Instance(name, first.instance_id, v, sdk_version=rng.choice(("1.20.0", "1.27.0")),
                                      sdk_language=rng.choice(("python", "java", "go")))  # fmt: skip
            insts[name][v] = lst
    by_span: dict[bytes, Instance] = {}
    for s in app.spans:
        name = s.instance.service
        parent = by_span.get(s.parent_id)
        if parent is not None and parent.service == name:
            inst = parent
        else:
            v = "2.0.0" if plan.deploy and plan.deploy[0] == name and s.start >= plan.deploy[1] else "1.0.0"
            inst = rng.choice(insts[name][v])
        s.instance = inst
        by_span[s.span_id] = inst
