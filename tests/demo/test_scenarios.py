"""Each scenario changes the figure it should (error rate, latency, missing spans, lag, rate) and only
while it is active; timelines parse and reject bad input precisely; the ground truth matches."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from otel_ai.demo import SCENARIOS, TimelineEvent, generate, load_timeline, parse_timeline
from otel_ai.demo.runner import NS
from otel_ai.demo.scenarios import anchor, effects_at
from otel_ai.errors import ConfigError
from tests.demo.conftest import T0, run_memory, service

HALF = 3.0  # minutes of baseline, then minutes of scenario
SPLIT = int(T0.timestamp() * NS) + int(HALF * 60 * NS)


def _server(spans: Sequence[ReadableSpan], svc: str, op: str | None = None) -> list[ReadableSpan]:
    return [
        s for s in spans if service(s) == svc and s.kind == SpanKind.SERVER and (op is None or op in s.name)
    ]


def error_rate(svc: str, op: str | None = None) -> Callable[[Sequence[ReadableSpan]], float]:
    def f(spans: Sequence[ReadableSpan]) -> float:
        xs = _server(spans, svc, op)
        return sum(s.status.status_code == StatusCode.ERROR for s in xs) / max(1, len(xs))

    return f


def mean_ms(svc: str) -> Callable[[Sequence[ReadableSpan]], float]:
    def f(spans: Sequence[ReadableSpan]) -> float:
        return statistics.fmean((s.end_time or 0) - (s.start_time or 0) for s in _server(spans, svc)) / 1e6

    return f


def count(svc: str, kind: SpanKind = SpanKind.SERVER) -> Callable[[Sequence[ReadableSpan]], float]:
    return lambda spans: float(sum(1 for s in spans if service(s) == svc and s.kind == kind))


def consumer_lag_s(spans: Sequence[ReadableSpan]) -> float:
    prod = {s.context.span_id: s for s in spans if s.kind == SpanKind.PRODUCER}
    lags = [
        ((c.start_time or 0) - (prod[c.links[0].context.span_id].end_time or 0)) / 1e9
        for c in spans
        if c.kind == SpanKind.CONSUMER and c.links[0].context.span_id in prod
    ]
    return statistics.fmean(lags)


def new_version_share(spans: Sequence[ReadableSpan]) -> float:
    xs = _server(spans, "product-catalog")
    return sum(s.resource.attributes["service.version"] == "2.1.4" for s in xs) / max(1, len(xs))


# scenario, magnitude, figure, check(before, during)
CASES: list[tuple[str, str, Callable[[Sequence[ReadableSpan]], float], Callable[[float, float], bool]]] = [
    ("payment-failure", "medium", error_rate("payment"), lambda b, d: b < 0.05 and d > 0.3),
    ("cart-failure", "medium", error_rate("cart"), lambda b, d: b == 0 and d > 0.3),
    (
        "product-catalog-failure",
        "medium",
        error_rate("product-catalog", "GetProduct"),
        lambda b, d: b == 0 and d > 0.3,
    ),
    ("ad-failure", "medium", error_rate("ad"), lambda b, d: b == 0 and d > 0.3),
    ("payment-unreachable", "severe", count("payment"), lambda b, d: b > 10 and d == 0),
    ("shipping-slow", "medium", mean_ms("shipping"), lambda b, d: b < 20 and d > 1500),
    ("recommendation-cache-failure", "medium", mean_ms("recommendation"), lambda b, d: d > b + 300),
    # x(1 + p) on the self-time only: the span also holds the flagd round trip, which is not slowed.
    ("ad-high-cpu", "medium", mean_ms("ad"), lambda b, d: d > 2 * b),
    ("email-memory-leak", "medium", mean_ms("email"), lambda b, d: d > b + 300),
    ("kafka-queue-problems", "medium", consumer_lag_s, lambda b, d: b < 0.05 and d > 5),
    ("flash-crowd", "medium", count("frontend-proxy"), lambda b, d: 3 < d / b < 5),
    ("traffic-drop", "medium", count("frontend-proxy"), lambda b, d: 0.3 < d / b < 0.7),
    ("deploy-latency-step", "severe", new_version_share, lambda b, d: b == 0 and d == 1),
]


def test_every_scenario_has_a_case() -> None:
    assert {c[0] for c in CASES} == {n for n, s in SCENARIOS.items() if s.insight is None}


@pytest.mark.parametrize(("name", "magnitude", "figure", "check"), CASES, ids=[c[0] for c in CASES])
def test_scenario_changes_its_figure_only_while_active(
    name: str,
    magnitude: str,
    figure: Callable[[Sequence[ReadableSpan]], float],
    check: Callable[[float, float], bool],
) -> None:
    ev = TimelineEvent(timedelta(minutes=HALF), timedelta(minutes=HALF), name, magnitude)
    cap = run_memory(2 * HALF, rate=6.0, seed=5, timeline=[ev])
    # Split by the trace's root start (kafka consumers may start after the window under lag).
    roots = {s.context.trace_id: s.start_time or 0 for s in cap.spans if s.parent is None}
    before = [s for s in cap.spans if roots.get(s.context.trace_id, s.start_time or 0) < SPLIT]
    during = [s for s in cap.spans if roots.get(s.context.trace_id, s.start_time or 0) >= SPLIT]
    b, d = figure(before), figure(during)
    assert check(b, d), f"{name}: before={b:.3f} during={d:.3f}"


def test_deploy_step_is_permanent_and_email_leak_ramps() -> None:
    events = anchor(
        [
            TimelineEvent(timedelta(minutes=1), timedelta(minutes=1), "deploy-latency-step", 0.1),
            TimelineEvent(timedelta(minutes=1), timedelta(minutes=10), "email-memory-leak", 1000),
        ],
        0,
    )
    after = effects_at(events, 5 * 60 * NS)
    assert after.latency_mult["product-catalog"] == pytest.approx(1.1)
    early, late = effects_at(events, 2 * 60 * NS), effects_at(events, 10 * 60 * NS)
    assert 0 < early.latency_add_ms["email"] < late.latency_add_ms["email"] <= 1000
    assert "email" not in early.error and late.error["email"] > 0
    assert "email" not in effects_at(events, 12 * 60 * NS).latency_add_ms  # over: not permanent


def test_timeline_yaml_and_ground_truth(tmp_path: Path) -> None:
    tl = tmp_path / "timeline.yaml"
    tl.write_text(
        "- {start: 1m, duration: 30s, scenario: payment-failure, magnitude: severe}\n"
        "- {start: 0, duration: 2m, scenario: shipping-slow, magnitude: 750}\n"
    )
    events = load_timeline(tl)
    assert [e.scenario for e in events] == ["shipping-slow", "payment-failure"]
    gt = tmp_path / "gt" / "truth.json"
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    res = generate(T0, T0 + timedelta(minutes=2), rate=1, seed=9, timeline=events, ground_truth_path=gt,
                   span_exporter=InMemorySpanExporter(), logs=False)  # fmt: skip
    doc = json.loads(gt.read_text())
    assert doc == res.ground_truth
    assert (
        doc["seed"] == 9
        and doc["start"] == "2026-11-18T12:00:00.000Z"
        and doc["end"] == "2026-11-18T12:02:00.000Z"
    )
    pay = doc["events"][1]
    assert pay == {
        "scenario": "payment-failure", "flag": "paymentFailure", "root_cause": "payment",
        "affected": ["payment", "checkout", "frontend", "frontend-proxy"], "benign": False, "permanent": False,
        "start": "2026-11-18T12:01:00.000Z", "end": "2026-11-18T12:01:30.000Z", "magnitude": "severe",
        "parameter": 1.0, "unit": "probability", "seed": 9,
    }  # fmt: skip
    assert doc["events"][0]["parameter"] == 750.0 and doc["events"][0]["unit"] == "ms"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scenario": "x"}, "expected a YAML list"),
        ([{"scenario": "no-such-thing"}], "unknown scenario 'no-such-thing'"),
        ([{"scenario": "ad-failure", "magnitude": "huge"}], "expected one of low, medium, severe"),
        ([{"scenario": "ad-failure", "start": "soon"}], "timeline[0].start: expected a duration"),
        ([{"scenario": "ad-failure", "stop": "1m"}], "unknown keys ['stop']"),
        ([{"scenario": "ad-failure", "duration": 0}], "duration > 0"),
        (["ad-failure"], "expected a mapping"),
    ],
    ids=[
        "not-a-list",
        "unknown-scenario",
        "bad-magnitude",
        "bad-start",
        "unknown-key",
        "zero-duration",
        "scalar",
    ],
)
def test_bad_timelines_are_rejected_precisely(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_timeline(data)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("name", "minutes", "deploy_s"),
    [("new-dependency", 10, 120), ("vanished-dependency", 10, 120), ("new-dependency", 1, 30)],
    ids=["new-2min-in", "vanished-2min-in", "new-half-way-through-a-short-run"],
)
def test_dependency_scenarios_deploy_the_frontend_once(name: str, minutes: int, deploy_s: int) -> None:
    """The new frontend version goes out 2 minutes in (half-way through a shorter event); the
    reviews API is called only after it (new) or only before it (vanished); the truth says when."""
    events = anchor([TimelineEvent(timedelta(0), timedelta(minutes=minutes), name, "severe")], 0)
    before, after = effects_at(events, (deploy_s - 1) * NS), effects_at(events, deploy_s * NS)
    assert "frontend" not in before.version and after.version["frontend"] == "2.2.0"
    calls = {"new-dependency": "new_dependency", "vanished-dependency": "vanished_dependency"}[name]
    assert (calls in before.patterns, calls in after.patterns) == (
        name == "vanished-dependency",
        name == "new-dependency",
    )
    truth = generate(T0, T0 + timedelta(seconds=1), rate=1, timeline=[events[0].event], logs=False,
                     span_exporter=_Null()).ground_truth  # fmt: skip
    assert truth["events"][0]["deploy_at"] == f"2026-11-18T12:{deploy_s // 60:02d}:{deploy_s % 60:02d}.000Z"


def test_single_point_of_failure_leaves_frontend_one_instance_and_the_rest_two() -> None:
    cap = run_memory(1.0, rate=6.0, seed=4, timeline=[TimelineEvent(timedelta(0), timedelta(minutes=1),
                                                                     "single-point-of-failure")])  # fmt: skip
    instances: dict[str, set[str]] = {}
    for s in cap.spans:
        instances.setdefault(service(s), set()).add(str(s.resource.attributes["service.instance.id"]))
    assert len(instances.pop("frontend")) == 1
    assert {len(v) for v in instances.values()} == {2}, instances


class _Null(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS
