"""The ``anomaly`` demo scenario end to end on stored spans: clean history, a model trained on it,
then the fault — the anomaly room opens an anomaly and the insight names its root cause; and the
CLI's preparation (history backfill + retrain) leaves a real daemon with a trained model."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.service import AnomalyService
from otel_ai.analysis.insights.detectors.anomaly import AnomalyDetector
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import DetectContext, Window
from otel_ai.cli.demo_prep import model_state, prepare_anomaly
from otel_ai.demo import SCENARIOS, TimelineEvent, generate
from otel_ai.model import Payload
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at

HISTORY_MIN, FAULT_MIN = 40, 10


def test_anomaly_scenario_opens_an_anomaly_that_names_its_root_cause(chdb_path: Path) -> None:
    st = storage_at(f"chdb://{chdb_path}", unique_db("anom"))
    st.start()
    try:
        t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
        fault_at, end = t0 + timedelta(minutes=HISTORY_MIN), t0 + timedelta(minutes=HISTORY_MIN + FAULT_MIN)
        mem = InMemorySpanExporter()
        timeline = [TimelineEvent(timedelta(minutes=HISTORY_MIN), timedelta(minutes=FAULT_MIN), "anomaly")]
        generate(t0, end, rate=2.0, seed=5, timeline=timeline, span_exporter=mem, logs=False, diurnal=False)
        spans = mem.get_finished_spans()
        TelemetryWriter(st).write([Payload("traces", "protobuf", "grpc", encode_spans(spans).SerializeToString(),
                                           len(spans))])  # fmt: skip
        room = AnomalyService(st, AnomalyConfig(min_history_s=0, max_iter=150))
        room.start()
        anomalies = room.detect(fault_at, end, t0, fault_at)
        cause = SCENARIOS["anomaly"].root_cause
        assert any((a["root_causes"] or [{}])[0].get("service") == cause for a in anomalies), [
            (a["entity"], a["root_causes"][:2]) for a in anomalies
        ]
        found = AnomalyDetector(DetectorsConfig()).detect(
            DetectContext(st, Window(fault_at, end), anomalies=anomalies)
        )
        mine = [f for f in found if f.facts["root_cause"] == cause]
        assert mine, [(f.title, f.facts) for f in found]
        assert mine[0].root_cause is not None and mine[0].root_cause.entity.id == cause
        assert mine[0].root_cause.change_type == "errors"
    finally:
        st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def test_demo_prepares_a_trained_model_before_the_fault(make_daemon: Any) -> None:
    """What ``otel-ai demo --scenario anomaly`` does first, against a real daemon (a short, slow
    history here: the daemon trains on at least 30 minutes)."""
    d = make_daemon()
    args = argparse.Namespace(api_url=d.api_url, token=None, seed=0)
    assert model_state(args)["state"] == "no_model"
    before = datetime.now(UTC)
    ready = prepare_anomaly(args, endpoint=d.ep.http_url, protocol="http/protobuf", rate=0.5, history_s=1860,
                            quiet=True)  # fmt: skip
    assert ready is not None and before - timedelta(seconds=1) <= ready <= datetime.now(UTC)
    state = model_state(args)
    assert state["state"] == "trained", state
    assert state["train_range"]["start"] is not None
