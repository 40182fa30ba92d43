"""A random application per seed, written as spans straight into ``otel_traces``.

Nobody tuned the detector on these: every seed draws a new call graph (6-30 instrumented services
in a tree-shaped DAG, some leaves with a second caller, 2-5 uninstrumented peers that only appear
as client spans, one queue with a producer and a consumer service), per-service volumes spread
over three orders of magnitude (the entry sees ``rate`` requests/min, the quietest ~1/1000 of
it), self-times, error rates, diurnal traffic with its own amplitude and phase, and 1-3 instances
per service. Faults act on one service, peer or edge for a time range (see :class:`Fault`).

Spans are CLIENT (the caller's side, ``peer.service`` naming the callee, ``http.request.resend_count``
on re-sent attempts), SERVER (the callee's side, child of the client span), PRODUCER / CONSUMER
(``messaging.destination.name``; the consumer is the producer span's child). Vectorised with
numpy per call edge, so days of traffic take seconds per million spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from otel_ai.storage import Storage

NAMES = ("gateway", "orders", "billing", "search", "catalog", "pricing", "inventory", "users", "auth",
         "cart", "reviews", "media", "shipping", "tax", "quotes", "ledger", "alerts", "profile", "promo",
         "ranking", "session", "coupons", "stock", "rates", "geo", "audit", "export", "loyalty", "wishlist",
         "returns", "invoices", "payouts")  # fmt: skip
PEERS = ("postgres", "redis", "mysql", "ext-payments", "memcached", "s3", "smtp", "ext-geo")


@dataclass(frozen=True)
class Unit:
    """One call edge: ``caller`` (service index) calls ``callee`` (service index, or a peer name)."""

    caller: int
    callee: int  # service index, -1 for a peer
    peer: str  # peer name (callee kind 'peer') or the callee's service name
    p: float  # calls per caller request (probability)
    kind: str  # 'svc' | 'peer' | 'queue'
    op: str
    self_ms: float = 1.0  # peers: their response time


@dataclass
class App:
    services: list[str]
    parent: list[int]
    self_ms: np.ndarray
    err_p: np.ndarray
    instances: list[int]
    units: list[Unit]
    rate: float  # entry requests per minute (daily mean)
    diurnal: float
    phase: float
    topic: str = "events"
    consumer: int = -1

    def volume(self) -> dict[str, float]:
        """Expected requests per minute of every service and peer (the daily mean)."""
        vol = np.zeros(len(self.services))
        vol[0] = self.rate
        peers: dict[str, float] = {}
        for u in self.units:  # units are in topological order of their callers
            v = vol[u.caller] * u.p
            if u.callee >= 0:
                vol[u.callee] += v
            else:
                peers[u.peer] = peers.get(u.peer, 0.0) + v
        return {**{s: float(vol[i]) for i, s in enumerate(self.services)}, **peers}

    def children(self, i: int) -> list[int]:
        return [k for k, u in enumerate(self.units) if u.caller == i]


@dataclass
class Fault:
    """``kind``: latency (self-time x ``factor``), errors (probability ``factor``), unreachable
    (share ``factor`` of calls refused: no server span), retry (every call re-sent ``factor``
    times, the first attempts time out client-side), lag (queue lag + ``factor`` seconds),
    traffic (entry rate x ``factor``: drops and flash crowds), deploy (self-time x ``factor``
    from ``start`` on: a permanent step)."""

    kind: str
    target: str  # service or peer name; retry: the caller; lag: the consumer
    start: int
    end: int
    factor: float
    callee: str = ""  # retry: the callee whose calls are re-sent


def random_app(seed: int, *, rate: float = 120.0, n_services: int | None = None) -> App:
    rng = np.random.default_rng(seed)
    n = int(n_services or rng.integers(6, 31))
    names = ["gateway"] + [str(x) for x in rng.permutation(NAMES[1:])[: n - 1]]
    # Volumes log-uniform over three orders of magnitude; a service's caller is busier than it.
    vols = np.sort(rate * 10 ** rng.uniform(-3, 0, n))[::-1]
    vols[0] = rate
    parent = [-1]
    units: list[Unit] = []
    for i in range(1, n):
        cands = [j for j in range(i) if vols[j] >= vols[i]]
        j = int(rng.choice(cands[: max(1, min(len(cands), 6))]))
        parent.append(j)
    # Give each service a primary unit; the callee's volume is its parent's x p.
    vol = np.zeros(n)
    vol[0] = rate
    order: list[Unit] = []
    for i in range(1, n):
        j = parent[i]
        p = float(min(1.0, vols[i] / max(vol[j], 1e-9)))
        vol[i] = vol[j] * p
        order.append(Unit(j, i, names[i], p, "svc", f"{names[i]}/{_verb(rng)}"))
    has_kids = {parent[i] for i in range(1, n)}
    # A few leaves get a second caller (a DAG, not only a tree).
    for i in range(2, n):
        if i not in has_kids and rng.random() < 0.3:
            others = [j for j in range(i) if j != parent[i] and vol[j] * 0.2 >= 0.05]
            if others:
                j = int(rng.choice(others))
                order.append(
                    Unit(j, i, names[i], float(rng.uniform(0.05, 0.5)), "svc", f"{names[i]}/{_verb(rng)}")
                )
    # The queue: a producer (not the entry) and a dedicated consumer service.
    producer = int(rng.integers(1, n)) if n > 1 else 0
    names.append(f"{names[producer]}-worker")
    consumer = len(names) - 1
    parent.append(producer)
    order.append(Unit(producer, consumer, names[consumer], 1.0, "queue", "events process"))
    # Uninstrumented peers: databases, caches, external APIs.
    n_peers = int(rng.integers(2, 6))
    for k, peer in enumerate(rng.permutation(PEERS)[:n_peers]):
        pname = f"{peer}-{k + 1}"
        callers = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
        for c in callers:
            order.append(Unit(int(c), -1, pname, float(rng.uniform(0.3, 1.0)), "peer", f"{peer} query",
                              float(10 ** rng.uniform(0, 1))))  # fmt: skip
    # Topological order of callers: a service's units run after it was reached.
    depth = [0] * len(names)
    for i in range(1, len(names)):
        depth[i] = depth[parent[i]] + 1
    units = sorted(order, key=lambda u: (depth[u.caller], u.caller, u.kind != "peer"))
    m = len(names)
    return App(
        services=names, parent=parent, self_ms=10 ** rng.uniform(0, 1.7, m), err_p=10 ** rng.uniform(-4, -2.5, m),
        instances=[int(x) for x in rng.integers(1, 4, m)], units=units, rate=rate,
        diurnal=float(rng.uniform(0.3, 0.6)), phase=float(rng.uniform(0, 2 * np.pi)), consumer=consumer,
    )  # fmt: skip


def _verb(rng: np.random.Generator) -> str:
    return str(rng.choice(("Get", "List", "Create", "Update", "Check", "Compute")))


COLUMNS = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName", "Duration",
           "StatusCode", "SpanAttributes", "ResourceAttributes"]  # fmt: skip
SLOTS = 16  # span-id slots per unit and trace: 5 client attempts + their server spans + spare


@dataclass
class _Out:
    cols: list[list] = field(default_factory=lambda: [[] for _ in COLUMNS])

    def add(self, ts: np.ndarray, trace: np.ndarray, span: np.ndarray, parent: np.ndarray | None, name: str,
            kind: str, svc: str, dur_ms: np.ndarray, err: np.ndarray, attrs: list[dict[str, str]],
            res: list[dict[str, str]]) -> None:  # fmt: skip
        c = self.cols
        c[0].extend(datetime.fromtimestamp(float(t), UTC) for t in ts)
        c[1].extend(f"{int(x):032x}" for x in trace)
        c[2].extend(f"{int(x):016x}" for x in span)
        c[3].extend([""] * len(ts) if parent is None else [f"{int(x):016x}" for x in parent])
        c[4].extend([name] * len(ts))
        c[5].extend([kind] * len(ts))
        c[6].extend([svc] * len(ts))
        c[7].extend((np.maximum(dur_ms, 0.001) * 1e6).astype(np.int64).tolist())
        c[8].extend(np.where(err, "Error", "Unset").tolist())
        c[9].extend(attrs)
        c[10].extend(res)


def _active(faults: list[Fault], kind: str, target: str, ts: np.ndarray) -> list[tuple[Fault, np.ndarray]]:
    return [(f, (ts >= f.start) & (ts < f.end)) for f in faults if f.kind == kind and f.target == target]


def generate(app: App, start: int, minutes: int, faults: list[Fault], seed: int) -> list[list]:
    """Column-oriented rows of ``minutes`` of traffic from ``start`` (unix seconds, minute-aligned)."""
    rng = np.random.default_rng([seed, start // 60])
    mins = start + 60 * np.arange(minutes)
    load = 1 + app.diurnal * np.sin(2 * np.pi * (mins % 86400) / 86400 + app.phase)
    lam = app.rate * load * rng.lognormal(0, 0.05, minutes)
    for f in faults:
        if f.kind == "traffic":
            lam = np.where((mins >= f.start) & (mins < f.end), lam * f.factor, lam)
    counts = rng.poisson(np.maximum(lam, 0))
    R = int(counts.sum())
    ts = np.repeat(mins, counts) + rng.uniform(0, 60, R)
    rload = np.repeat(load, counts)
    m = len(app.services)
    trace = rng.integers(1, 2**62, R, dtype=np.int64)
    base = rng.integers(1, 2**40, R, dtype=np.int64) * (SLOTS * (len(app.units) + 1))
    reached = np.zeros((m, R), bool)
    reached[0] = True
    inst = [rng.integers(0, app.instances[i], R) for i in range(m)]
    # Top-down: which calls happen, how many attempts, which are refused.
    act, att, refused = [], [], []
    for u in app.units:
        a = reached[u.caller] & (rng.random(R) < u.p)
        k = np.ones(R, dtype=np.int64)
        for f, on in _active(faults, "retry", app.services[u.caller], ts):
            if f.callee == u.peer:
                k = np.where(on & a, int(f.factor), k)
        ref = np.zeros(R, bool)
        for f, on in _active(faults, "unreachable", u.peer, ts):
            ref |= on & a & (rng.random(R) < f.factor)
        if u.callee >= 0:
            reached[u.callee] |= a & ~ref
        act.append(a)
        att.append(k)
        refused.append(ref)
    # Bottom-up: self-times, durations, errors.
    self_ms = np.empty((m, R))
    own_err = np.empty((m, R), bool)
    for i in range(m):
        s = app.self_ms[i] * rng.lognormal(0, 0.3, R) * (1 + 0.1 * rload)
        e = rng.random(R) < app.err_p[i]
        for f, on in _active(faults, "latency", app.services[i], ts) + _active(
            faults, "deploy", app.services[i], ts
        ):
            s = np.where(on, s * f.factor, s)
        for f, on in _active(faults, "errors", app.services[i], ts):
            e |= on & (rng.random(R) < f.factor)
        self_ms[i], own_err[i] = s, e
    dur = self_ms.copy()
    err = own_err.copy()
    client_ms: list[np.ndarray] = [np.zeros(R)] * len(app.units)
    client_err: list[np.ndarray] = [np.zeros(R, bool)] * len(app.units)
    timeout_ms: list[float] = [0.0] * len(app.units)
    for ui in reversed(range(len(app.units))):
        u = app.units[ui]
        if u.kind == "queue":
            client_ms[ui] = np.full(R, 0.3)  # the producer span; the consumer runs later
            continue
        if u.callee >= 0:
            cd, ce = dur[u.callee] + 0.3, err[u.callee].copy()
        else:
            cd = u.self_ms * rng.lognormal(0, 0.3, R)
            ce = rng.random(R) < 1e-4
        ref = refused[ui]
        cd = np.where(ref, rng.uniform(1, 3, R), cd)
        ce = ce | ref
        timeout_ms[ui] = float(3 * np.median(cd[act[ui]])) if act[ui].any() else 10.0
        total = cd + (att[ui] - 1) * timeout_ms[ui]  # failed attempts wait for their timeout
        client_ms[ui], client_err[ui] = cd, ce
        a = act[ui]
        dur[u.caller] += np.where(a, total, 0.0)
        err[u.caller] |= a & ce & (rng.random(R) < 0.7)
    # Emit spans top-down with start times (children run one after another).
    out = _Out()
    res = [[{"service.name": s, "service.instance.id": f"{s}-{k}"} for k in range(app.instances[i])]
           for i, s in enumerate(app.services)]  # fmt: skip
    server_id = np.zeros((m, R), np.int64)
    server_start = np.zeros((m, R))
    cursor = np.zeros((m, R))
    server_id[0], server_start[0] = base + 1, ts
    cursor[0] = ts + 0.5 * self_ms[0] / 1e3
    idx = np.flatnonzero(reached[0])
    out.add(ts[idx], trace[idx], server_id[0][idx], None, "GET /api", "Server", app.services[0], dur[0][idx],
            err[0][idx], [{"http.route": "/api"}] * len(idx), [res[0][k] for k in inst[0][idx]])  # fmt: skip
    for ui, u in enumerate(app.units):
        a = act[ui]
        idx = np.flatnonzero(a)
        if not len(idx):
            continue
        c = u.caller
        slot = base[idx] + SLOTS * (ui + 1)
        caller_res = [res[c][k] for k in inst[c][idx]]
        t = cursor[c][idx].copy()
        if u.kind == "queue":
            pattrs = {
                "messaging.system": "kafka",
                "messaging.destination.name": app.topic,
                "server.address": "kafka",
            }
            out.add(t, trace[idx], slot, server_id[c][idx], f"{app.topic} publish", "Producer",
                    app.services[c], np.full(len(idx), 0.3), np.zeros(len(idx), bool), [pattrs] * len(idx),
                    caller_res)  # fmt: skip
            lag = rng.lognormal(np.log(0.005), 0.5, len(idx))
            for f, on in _active(faults, "lag", app.services[u.callee], ts):
                lag = np.where(on[idx], lag + f.factor * rng.uniform(0.8, 1.2, len(idx)), lag)
            cs = t + 0.3e-3 + lag
            q = u.callee
            server_id[q][idx], server_start[q][idx] = slot + 1, cs
            cursor[q][idx] = cs + 0.5 * self_ms[q][idx] / 1e3
            cattrs = {"messaging.system": "kafka", "messaging.destination.name": app.topic,
                      "messaging.consumer.group.name": app.services[q]}  # fmt: skip
            out.add(cs, trace[idx], slot + 1, slot, f"{app.topic} process", "Consumer", app.services[q],
                    dur[q][idx], err[q][idx], [cattrs] * len(idx), [res[q][x] for x in inst[q][idx]])  # fmt: skip
            cursor[c][idx] += 0.3e-3
            continue
        kmax = int(att[ui][idx].max())
        for attempt in range(kmax):
            sel = att[ui][idx] > attempt
            j = idx[sel]
            last = att[ui][j] == attempt + 1
            cd = np.where(last, client_ms[ui][j], timeout_ms[ui])
            ce = np.where(last, client_err[ui][j], True)
            cid = slot[sel] + 2 * attempt
            cattr = {"peer.service": u.peer, "server.address": u.peer}
            if attempt:
                cattr["http.request.resend_count"] = str(attempt)
            out.add(t[sel], trace[j], cid, server_id[c][j], u.op, "Client", app.services[c], cd, ce,
                    [cattr] * len(j), [caller_res[x] for x in np.flatnonzero(sel)])  # fmt: skip
            if u.callee >= 0:
                v = u.callee
                ok = ~refused[ui][j]
                jj, ss = j[ok], t[sel][ok] + 0.15e-3
                if len(jj):  # the callee answers every attempt that reached it (timed-out ones too)
                    sd = np.where(last[ok], dur[v][jj], self_ms[v][jj])
                    se = np.where(last[ok], err[v][jj], own_err[v][jj])
                    out.add(ss, trace[jj], cid[ok] + 1, cid[ok], u.op, "Server", app.services[v], sd, se,
                            [{"rpc.method": u.op}] * len(jj), [res[v][x] for x in inst[v][jj]])  # fmt: skip
                    fin = last[ok]
                    server_id[v][jj[fin]], server_start[v][jj[fin]] = cid[ok][fin] + 1, ss[fin]
                    cursor[v][jj[fin]] = ss[fin] + 0.5 * self_ms[v][jj[fin]] / 1e3
            t[sel] += cd / 1e3
        cursor[c][idx] = t
    return out.cols


def write(storage: Storage, app: App, start: int, minutes: int, faults: list[Fault], seed: int, *,
          chunk_minutes: int = 240) -> int:  # fmt: skip
    """Generate and insert ``minutes`` of traffic; returns the number of spans written."""
    total = 0
    for off in range(0, minutes, chunk_minutes):
        cols = generate(app, start + 60 * off, min(chunk_minutes, minutes - off), faults, seed)
        if cols[0]:
            storage.insert("otel_traces", cols, COLUMNS, column_oriented=True)
            total += len(cols[0])
    return total
