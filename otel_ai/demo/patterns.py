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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from otel_ai.demo.pattern_app import (
    CLIENT,
    CONSUMER,
    INTERNAL,
    PRODUCER,
    SERVER,
    SERVICES,
    App,
    Builder,
    Instance,
    Planted,
    PSpan,
)  # fmt: skip
from otel_ai.demo.pattern_flows import Flows
from otel_ai.model import Payload

__all__ = ["CLIENT", "CONSUMER", "INTERNAL", "PATTERNS", "PRODUCER", "SERVER", "App", "Instance", "PSpan",
           "Planted", "build", "payloads"]  # fmt: skip


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
