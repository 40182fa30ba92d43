"""The pipeline over the room's real detectors on planted-pattern apps (the demo's), rules
provider: the planted finding comes out named, scored and grounded; a clean control raises
nothing of medium severity or above."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.analysis.insights.config import InsightsConfig
from otel_ai.analysis.insights.model import Window
from otel_ai.analysis.insights.service import InsightsService
from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.analysis.topology.service import TopologyService
from otel_ai.demo import patterns
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter
from tests.insights.conftest import minute_ago, rules_llm


@pytest.mark.parametrize("pattern", ["n_plus_one", "error_propagation", "clean"])
def test_planted_pattern_through_the_whole_pipeline(storage: Storage, pattern: str) -> None:
    app = patterns.build(pattern, 1, minute_ago(40))
    TelemetryWriter(storage, registry=CollectorRegistry()).write(patterns.payloads(app))
    reg = CollectorRegistry()
    topo = TopologyService(storage, TopologyConfig(), reg)
    topo.start()
    svc = InsightsService(storage, InsightsConfig(), reg, topology=topo, llm=rules_llm())
    svc.start()
    out = svc.generate(Window(app.start, app.end))
    for planted in app.planted:
        hit = [
            i for i in out if i["kind"] == planted.kind and planted.entity in {e["id"] for e in i["entities"]}
        ]
        assert hit, (planted, [(i["kind"], i["entities"]) for i in out])
        assert hit[0]["severity"] in ("medium", "high", "critical") and not hit[0]["abstained"]
    for ins in out:
        ids = {e["id"] for e in ins["evidence"]}
        assert ins["claims"] and all(set(c["evidence_ids"]) <= ids for c in ins["claims"])
    if pattern == "clean":
        assert all(i["severity"] in ("low", "info") for i in out), [(i["kind"], i["severity"]) for i in out]
    assert svc.list(app.start, app.end, status="all") == out
