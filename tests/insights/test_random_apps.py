"""The random-app source of the insight evaluation (``otel_ai.testing.insight_apps``): apps differ
per seed, the labels hold by construction, and the real detectors find a planted kind over its
threshold and stay silent on its near miss, on stored spans."""

from __future__ import annotations

from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.analysis.insights.config import InsightsConfig
from otel_ai.analysis.insights.detectors import build_detectors
from otel_ai.analysis.insights.model import DetectContext, Window
from otel_ai.demo import patterns
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing import insight_apps
from tests.insights.conftest import minute_ago


def test_apps_differ_per_seed_and_instances_follow_the_traffic() -> None:
    a, b = (insight_apps.build("clean", seed, minute_ago(40)) for seed in (1, 2))
    assert set(a.services) != set(b.services)
    again = insight_apps.build("clean", 1, minute_ago(40))
    assert len(again.spans) == len(a.spans) and set(again.services) == set(a.services)
    window_ns = int(a.start.timestamp() * 1e9)
    traces, instances, roots = defaultdict(set), defaultdict(set), set()
    for s in a.spans:
        if s.start >= window_ns:
            traces[s.instance.service].add(s.trace_id)
            instances[s.instance.service].add(s.instance.instance_id)
            roots.add(s.trace_id) if not s.parent_id else None
    busy = [svc for svc, t in traces.items() if len(t) / len(roots) >= 0.35]
    assert busy and all(len(instances[svc]) >= 2 for svc in busy), {s: len(instances[s]) for s in busy}


@pytest.mark.parametrize(
    ("kind", "positive", "seed"),
    [
        ("n_plus_one", True, 7),
        ("n_plus_one", False, 7),
        ("sequential_calls", False, 8),
        ("retry_storm", False, 9),
        ("error_propagation", False, 10),
        ("single_point_of_failure", True, 11),
        ("queue_lag", False, 12),
        ("dependency_cycle", True, 102),
        ("sequential_calls", True, 301),
    ],
    ids=[
        "n+1",
        "n+1-near",
        "sequential-near",
        "retry-near",
        "errors-caught",
        "spof",
        "queue-lag-near",
        "cycle-through-a-linked-queue",
        "sequential-calls-varying-per-request",
    ],
)
def test_detector_on_a_random_app(storage: Storage, kind: str, positive: bool, seed: int) -> None:
    app = insight_apps.build(kind, seed, minute_ago(40), positive=positive, traces=120)
    TelemetryWriter(storage, registry=CollectorRegistry()).write(patterns.payloads(app))
    (detector,) = [d for d in build_detectors(InsightsConfig().detectors) if d.kind == kind]
    found = detector.detect(DetectContext(storage, Window(app.start, app.end)))
    if positive:
        (planted,) = app.planted
        assert any(planted.entity in {e.id for e in f.entities} for f in found), (planted, found)
    else:
        assert app.near is not None and not app.planted
        place = app.near.entity  # where it is located (kinds also caused elsewhere) or named

        def at(f: object) -> bool:
            ents = [e.id for e in f.entities]  # type: ignore[attr-defined]
            return ents[:1] == [place] if kind in app.elsewhere else place in ents

        at_place = [f for f in found if at(f)]
        assert not at_place, (app.near, [f.facts for f in at_place])
