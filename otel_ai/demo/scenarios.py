"""Fault scenarios that mirror the OpenTelemetry demo's flagd flags, timelines and ground truth.

A :class:`Scenario` turns a magnitude into one parameter (a probability, milliseconds, a factor
or seconds) and applies it to an :class:`Effects` value at a simulated instant. A timeline is a
list of :class:`TimelineEvent` (offset from the run start, duration, scenario, magnitude); the
generator asks :func:`effects_at` once per simulated second. Every run writes a ground-truth JSON
file of what was injected when, so detectors can be scored against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from otel_ai import timeutil
from otel_ai.errors import ConfigError

Magnitude = str | float
LEVELS = ("low", "medium", "severe")
FRONT = ("frontend", "frontend-proxy")


@dataclass
class Effects:
    """What the simulated shop looks like at one instant (mutable, rebuilt each simulated second)."""

    error: dict[str, float] = field(default_factory=dict)  # "service" or "service/Operation" → p
    latency_add_ms: dict[str, float] = field(default_factory=dict)
    latency_mult: dict[str, float] = field(default_factory=dict)
    unreachable: dict[str, float] = field(default_factory=dict)  # service → share of calls refused
    consumer_lag_s: float = 0.0
    rate_factor: float = 1.0
    cpu_load: dict[str, float] = field(default_factory=dict)  # extra CPU utilisation (0..1)
    memory_factor: dict[str, float] = field(default_factory=dict)
    version: dict[str, str] = field(default_factory=dict)
    # Architectural patterns planted in the shop's call trees (pattern name → parameter).
    patterns: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A named fault: which demo flag it mirrors, its root cause and how a parameter applies."""

    name: str
    flag: str
    root_cause: str | None
    affected: tuple[str, ...]
    unit: str
    levels: tuple[float, float, float]
    apply: Callable[[Effects, float, float], None]  # (effects, parameter, progress 0..1)
    description: str
    benign: bool = False
    permanent: bool = False
    insight: str | None = None  # the insight kind this scenario plants (pattern scenarios)
    # A deploy scenario: a new version of a service goes out this long after the event starts
    # (or half-way through a shorter event); ``apply`` then gets progress 0 before it, 1 after.
    deploy_after_s: float | None = None
    # Needs this much clean history before the fault and a trained anomaly model (``otel-ai demo``
    # backfills it and asks the daemon to train, see docs/insights.md).
    history_s: float | None = None

    def parameter(self, magnitude: Magnitude) -> float:
        if isinstance(magnitude, int | float) and not isinstance(magnitude, bool):
            return float(magnitude)
        if magnitude in LEVELS:
            return self.levels[LEVELS.index(str(magnitude))]
        raise ConfigError("magnitude", f"expected one of {', '.join(LEVELS)} or a number, got {magnitude!r}")


def _add(d: dict[str, float], key: str, value: float) -> None:
    d[key] = d.get(key, 0.0) + value


def _mult(d: dict[str, float], key: str, value: float) -> None:
    d[key] = d.get(key, 1.0) * value


def _errors(key: str) -> Callable[[Effects, float, float], None]:
    return lambda e, p, _: _add(e.error, key, p)


def _email_leak(e: Effects, p: float, progress: float) -> None:
    # A leak ramps: latency grows with the event's progress, then the service starts failing.
    _add(e.latency_add_ms, "email", p * progress)
    _mult(e.memory_factor, "email", 1.0 + 9.0 * progress)
    if progress > 0.8:
        _add(e.error, "email", 0.25 * (progress - 0.8) / 0.2)


def _ad_cpu(e: Effects, k: float, _: float) -> None:
    _mult(e.latency_mult, "ad", 1.0 + k)
    _add(e.cpu_load, "ad", min(0.95, 0.1 * k + 0.3))


def _kafka_lag(e: Effects, s: float, progress: float) -> None:
    e.consumer_lag_s = max(e.consumer_lag_s, s * max(progress, 0.05))


def _flash(e: Effects, k: float, _: float) -> None:
    e.rate_factor *= k


def _drop(e: Effects, k: float, _: float) -> None:
    e.rate_factor *= k


def _deploy(e: Effects, k: float, _: float) -> None:
    _mult(e.latency_mult, "product-catalog", 1.0 + k)
    e.version["product-catalog"] = "2.1.4"


def _unreachable(e: Effects, p: float, _: float) -> None:
    _add(e.unreachable, "payment", p)


def _pattern(name: str) -> Callable[[Effects, float, float], None]:
    def apply(e: Effects, p: float, _: float) -> None:
        e.patterns[name] = p

    return apply


def _slow(service: str) -> Callable[[Effects, float, float], None]:
    return lambda e, ms, _: _add(e.latency_add_ms, service, ms)


NEW_FRONTEND = "2.2.0"  # the frontend version the dependency scenarios deploy


def _new_dependency(e: Effects, p: float, deployed: float) -> None:
    if deployed:  # the new version fetches reviews from a third-party API
        e.version["frontend"] = NEW_FRONTEND
        e.patterns["new_dependency"] = p


def _vanished_dependency(e: Effects, p: float, deployed: float) -> None:
    if deployed:  # the new version no longer calls it
        e.version["frontend"] = NEW_FRONTEND
    else:
        e.patterns["vanished_dependency"] = p


_CHECKOUT_PATH = ("checkout", *FRONT)
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("payment-failure", "paymentFailure", "payment", ("payment", *_CHECKOUT_PATH), "probability",
                 (0.1, 0.5, 1.0), _errors("payment"), "payment Charge fails with probability p"),
        Scenario("cart-failure", "cartFailure", "cart", ("cart", *_CHECKOUT_PATH), "probability",
                 (0.1, 0.5, 1.0), _errors("cart"), "every cart operation fails with probability p"),
        Scenario("product-catalog-failure", "productCatalogFailure", "product-catalog",
                 ("product-catalog", "recommendation", *_CHECKOUT_PATH), "probability", (0.1, 0.5, 1.0),
                 _errors("product-catalog/GetProduct"), "GetProduct fails with probability p"),
        Scenario("ad-failure", "adFailure", "ad", ("ad", *FRONT), "probability", (0.1, 0.5, 1.0),
                 _errors("ad"), "GetAds fails with probability p"),
        Scenario("payment-unreachable", "paymentUnreachable", "payment", _CHECKOUT_PATH, "probability",
                 (0.25, 0.6, 1.0), _unreachable,
                 "a share p of checkout→payment calls are refused (UNAVAILABLE); no payment span"),
        Scenario("shipping-slow", "intlShippingSlowdown", "shipping", ("shipping", *_CHECKOUT_PATH), "ms",
                 (500.0, 2000.0, 5000.0), _slow("shipping"), "shipping self-time += p ms"),
        Scenario("recommendation-cache-failure", "recommendationCacheFailure", "recommendation",
                 ("recommendation", *FRONT), "ms", (100.0, 400.0, 1500.0), _slow("recommendation"),
                 "recommendation self-time += p ms (its cache misses)"),
        Scenario("ad-high-cpu", "adHighCpu", "ad", ("ad", *FRONT), "factor", (1.0, 3.0, 8.0), _ad_cpu,
                 "ad self-time x (1 + p), CPU utilisation up"),
        Scenario("email-memory-leak", "emailMemoryLeak", "email", ("email", *_CHECKOUT_PATH), "ms",
                 (200.0, 1000.0, 4000.0), _email_leak,
                 "email latency ramps 0 → p ms over the event, memory grows, errors in the last 20%"),
        Scenario("kafka-queue-problems", "kafkaQueueProblems", "kafka", ("accounting", "fraud-detection"), "s",
                 (5.0, 30.0, 120.0), _kafka_lag, "consumer lag ramps to p seconds behind the producer"),
        Scenario("traffic-drop", "loadGeneratorUsers", "frontend-proxy", ("frontend-proxy", "frontend"), "factor",
                 (0.7, 0.5, 0.3), _drop,
                 "ingress rate x p: users cannot reach the shop (an ingress fault; only the time of day tells it "
                 "from the nightly trough)"),
        Scenario("flash-crowd", "loadGeneratorUsers", None, (), "factor", (2.0, 4.0, 8.0), _flash,
                 "ingress rate x p (benign)", benign=True),
        Scenario("deploy-latency-step", "(deploy)", "product-catalog", ("product-catalog",), "factor",
                 (0.05, 0.1, 0.2), _deploy,
                 "product-catalog 2.1.4 deployed: latency x (1 + p) from then on (benign, permanent)",
                 benign=True, permanent=True),
        # Architectural patterns: what the insight detectors find (docs/insights.md).
        Scenario("n-plus-one", "(pattern)", "product-catalog", ("product-catalog",), "calls", (6.0, 10.0, 20.0),
                 _pattern("n_plus_one"), "ListProducts reads reviews with one SELECT per product",
                 insight="n_plus_one"),
        Scenario("retry-storm", "(pattern)", "payment", ("payment", "checkout"), "probability", (0.4, 0.6, 0.8),
                 _pattern("retry_storm"), "Charge attempts fail with probability p; checkout retries up to 4 times",
                 insight="retry_storm"),
        Scenario("sequential-calls", "(pattern)", "frontend", ("frontend",), "ms", (60.0, 150.0, 300.0),
                 _pattern("sequential_calls"),
                 "the product page calls recommendation, ad and shipping one after another, p ms each",
                 insight="sequential_calls"),
        Scenario("fan-out", "(pattern)", "recommendation", ("recommendation", "product-catalog"), "calls",
                 (10.0, 15.0, 30.0), _pattern("fan_out"),
                 "recommendation fetches p products from product-catalog concurrently", insight="fan_out"),
        Scenario("chatty-dependency", "(pattern)", "frontend", ("frontend", "currency"), "calls", (10.0, 15.0, 25.0),
                 _pattern("chatty_dependency"), "the product page converts p prices one call at a time",
                 insight="chatty_dependency"),
        Scenario("dependency-cycle", "(pattern)", "shipping", ("shipping", "checkout"), "probability",
                 (0.3, 0.6, 1.0), _pattern("dependency_cycle"),
                 "shipping calls back into checkout while quoting an order", insight="dependency_cycle"),
        Scenario("slow-query", "(pattern)", "product-catalog", ("product-catalog",), "ms", (600.0, 1200.0, 3000.0),
                 _pattern("slow_query"), "a fifth of ListProducts run a p ms search query",
                 insight="slow_query"),
        Scenario("queue-lag", "(pattern)", "kafka", ("accounting", "fraud-detection"), "s", (5.0, 30.0, 120.0),
                 _kafka_lag, "consumers process orders p seconds after they are published", insight="queue_lag"),
        Scenario("sdk-drift", "(pattern)", "cart", ("cart",), "share", (0.2, 0.5, 0.8), _pattern("sdk_drift"),
                 "a share p of cart's spans come from an instance on an older OpenTelemetry SDK",
                 insight="sdk_drift"),
        Scenario("encoding-drift", "(pattern)", "product-catalog", ("product-catalog",), "share", (0.2, 0.5, 0.8),
                 _pattern("encoding_drift"),
                 "a share p of product-catalog's requests go to an instance whose exporter sends OTLP/JSON over "
                 "HTTP (the others send the run's --protocol)", insight="encoding_drift"),
        Scenario("critical-path-hotspot", "(pattern)", "product-catalog", ("product-catalog", *FRONT), "ms",
                 (100.0, 300.0, 800.0), _slow("product-catalog/GetProduct"),
                 "GetProduct takes p ms longer: product-catalog holds most of the product page's critical path",
                 insight="critical_path_hotspot"),
        Scenario("error-propagation", "(pattern)", "currency", ("currency", *_CHECKOUT_PATH), "probability",
                 (0.05, 0.2, 0.5), _errors("currency/Convert"),
                 "currency Convert fails with probability p; the product page and checkout fail with it",
                 insight="error_propagation"),
        Scenario("single-point-of-failure", "(pattern)", "frontend", ("frontend", "frontend-proxy"), "instances",
                 (1.0, 1.0, 1.0), _pattern("single_point_of_failure"),
                 "frontend runs p instance(s) while every other service runs two", insight="single_point_of_failure"),
        Scenario("new-dependency", "(pattern)", "frontend", ("frontend",), "probability", (0.3, 0.6, 1.0),
                 _new_dependency, f"frontend {NEW_FRONTEND} is deployed 2 minutes in (half-way through a shorter "
                 "run) and calls api.reviews.example on a share p of product pages", insight="new_dependency",
                 deploy_after_s=120.0),
        Scenario("vanished-dependency", "(pattern)", "frontend", ("frontend",), "probability", (0.3, 0.6, 1.0),
                 _vanished_dependency, "frontend calls api.reviews.example on a share p of product pages until "
                 f"frontend {NEW_FRONTEND} is deployed 2 minutes in (half-way through a shorter run)",
                 insight="vanished_dependency", deploy_after_s=120.0),
        Scenario("anomaly", "(pattern)", "product-catalog", ("product-catalog", "recommendation", *_CHECKOUT_PATH),
                 "probability", (0.1, 0.5, 1.0), _errors("product-catalog/GetProduct"),
                 "after an hour of clean history and a model trained on it, GetProduct fails with probability p "
                 "(what the anomaly detector pages on)", insight="anomaly", history_s=3600.0),
    )
}  # fmt: skip


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            "scenario", f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}"
        ) from None


@dataclass(frozen=True)
class TimelineEvent:
    """One scheduled injection, relative to the run start."""

    offset: timedelta
    duration: timedelta
    scenario: str
    magnitude: Magnitude = "medium"

    def __post_init__(self) -> None:
        scenario(self.scenario).parameter(self.magnitude)  # validates both
        if self.offset < timedelta(0) or self.duration <= timedelta(0):
            raise ConfigError(f"timeline {self.scenario}", "start must be >= 0 and duration > 0")


_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(value: str | float | int, key: str = "duration") -> timedelta:
    """``90``, ``"90"``, ``"90s"``, ``"15m"``, ``"7d"`` → timedelta (plain numbers are seconds); a
    bad value is a :class:`ConfigError` naming ``key``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    text = str(value).strip()
    try:
        return timedelta(seconds=float(text)) if _SECONDS.fullmatch(text) else timeutil.parse_duration(text)
    except ValueError:
        raise ConfigError(
            key, f"expected a duration: seconds (300) or with a unit (30s, 15m, 2h, 7d); got {value!r}"
        ) from None


def load_timeline(path: str | Path) -> list[TimelineEvent]:
    """Read a YAML list of ``{start, duration, scenario, magnitude}`` mappings."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"timeline {path}", str(exc)) from exc
    return parse_timeline(data, str(path))


def parse_timeline(data: Any, where: str = "timeline") -> list[TimelineEvent]:
    if not isinstance(data, list):
        raise ConfigError(where, "expected a YAML list of events")
    out: list[TimelineEvent] = []
    for i, item in enumerate(data):
        key = f"{where}[{i}]"
        if not isinstance(item, dict) or "scenario" not in item:
            raise ConfigError(key, "expected a mapping with start, duration, scenario, magnitude")
        unknown = set(item) - {"start", "duration", "scenario", "magnitude"}
        if unknown:
            raise ConfigError(key, f"unknown keys {sorted(unknown)}")
        out.append(
            TimelineEvent(
                offset=parse_duration(item.get("start", 0), f"{key}.start"),
                duration=parse_duration(item.get("duration", "10m"), f"{key}.duration"),
                scenario=str(item["scenario"]),
                magnitude=item.get("magnitude", "medium"),
            )
        )
    return sorted(out, key=lambda e: e.offset)


@dataclass(frozen=True)
class ActiveEvent:
    """A timeline event anchored at absolute times (ns since the epoch)."""

    event: TimelineEvent
    start_ns: int
    end_ns: int
    parameter: float

    @property
    def scenario(self) -> Scenario:
        return SCENARIOS[self.event.scenario]


def anchor(timeline: Sequence[TimelineEvent], run_start_ns: int) -> list[ActiveEvent]:
    out = []
    for ev in timeline:
        start = run_start_ns + int(ev.offset.total_seconds() * 1e9)
        end = start + int(ev.duration.total_seconds() * 1e9)
        out.append(ActiveEvent(ev, start, end, scenario(ev.scenario).parameter(ev.magnitude)))
    return out


def deploy_ns(a: ActiveEvent) -> int:
    """When a deploy scenario's new version goes out: ``deploy_after_s`` in, or half-way."""
    after = a.scenario.deploy_after_s or 0.0
    return a.start_ns + min(int(after * 1e9), (a.end_ns - a.start_ns) // 2)


def effects_at(events: Sequence[ActiveEvent], t_ns: int) -> Effects:
    eff = Effects()
    for a in events:
        if t_ns < a.start_ns:
            continue
        if t_ns >= a.end_ns and not a.scenario.permanent:
            continue
        progress = min(1.0, (t_ns - a.start_ns) / max(1, a.end_ns - a.start_ns))
        if a.scenario.deploy_after_s is not None:
            progress = 1.0 if t_ns >= deploy_ns(a) else 0.0
        a.scenario.apply(eff, a.parameter, progress)
    return eff


def rfc3339(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ground_truth(
    events: Sequence[ActiveEvent], *, seed: int, start_ns: int, end_ns: int | None, protocol: str, rate: float
) -> dict[str, Any]:
    """The JSON document written next to every run: what was injected when (times RFC 3339)."""
    rows = []
    for a in events:
        s = a.scenario
        end = a.end_ns if not s.permanent or end_ns is None else max(a.end_ns, end_ns)
        rows.append(
            {
                "scenario": s.name,
                "flag": s.flag,
                "root_cause": s.root_cause,
                "affected": list(s.affected),
                "benign": s.benign,
                "permanent": s.permanent,
                "start": rfc3339(a.start_ns),
                "end": rfc3339(end),
                "magnitude": a.event.magnitude,
                "parameter": a.parameter,
                "unit": s.unit,
                "seed": seed,
                **({"deploy_at": rfc3339(deploy_ns(a))} if s.deploy_after_s is not None else {}),
            }
        )
    return {
        "seed": seed,
        "protocol": protocol,
        "rate": rate,
        "start": rfc3339(start_ns),
        "end": rfc3339(end_ns) if end_ns is not None else None,
        "events": rows,
    }


def write_ground_truth(path: str | Path, doc: dict[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(p)
