"""Each detector on stored spans: the planted app's pattern is found (naming the planted entity),
a clean control of the same shape yields nothing of that kind, and the edge cases hold."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otel_ai.analysis.insights.detectors import build_detectors
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import KINDS, DetectContext, Finding, Window
from otel_ai.demo import patterns
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=40)
SLOTS = ["clean", *patterns.PATTERNS, "clean-no-history"]


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[tuple[Storage, dict[str, patterns.App]]]:
    """One database holding every planted app, each in its own hour."""
    st = storage_at(f"chdb://{chdb_path}", unique_db("insights"))
    st.start()
    writer = TelemetryWriter(st)
    apps = {}
    for i, name in enumerate(SLOTS):
        pattern = "clean" if name.startswith("clean") else name
        app = patterns.build(
            pattern, 7, BASE + timedelta(hours=i), traces=150, previous=name != "clean-no-history"
        )
        writer.write(patterns.payloads(app))
        apps[name] = app
    yield st, apps
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


_RUNS: dict[str, list[Finding]] = {}


def detect(st: Storage, app: patterns.App, cfg: DetectorsConfig | None = None) -> list[Finding]:
    ctx = DetectContext(st, Window(app.start, app.end), anomalies=app.anomalies)
    return [f for d in build_detectors(cfg or DetectorsConfig()) for f in d.detect(ctx)]


def findings(st: Storage, app: patterns.App) -> list[Finding]:
    """Every detector's findings on the app with the default config (one run per app)."""
    if app.name not in _RUNS:
        _RUNS[app.name] = detect(st, app)
    return _RUNS[app.name]


def _names(f: Finding) -> set[str]:
    return {e.id for e in f.entities}


@pytest.mark.parametrize("kind", list(patterns.PATTERNS), ids=list(patterns.PATTERNS))
def test_planted_pattern_is_found(store: tuple[Storage, dict[str, patterns.App]], kind: str) -> None:
    st, apps = store
    app = apps[kind]
    planted = app.planted[0]
    found = [f for f in findings(st, app) if f.kind == kind]
    assert found, f"no {kind} finding"
    assert any(planted.entity in _names(f) for f in found), [sorted(_names(f)) for f in found]
    f = found[0]
    assert f.impact.affected_traces >= 1 and f.impact.total_traces >= f.impact.affected_traces
    assert f.evidence and all(e.id.startswith(f"{kind}:") for e in f.evidence)
    assert f.recommendations and all(
        set(r.evidence_ids) <= {e.id for e in f.evidence} for r in f.recommendations
    )
    # Nothing beyond the planted kind, what follows from it, and the advisory store notes.
    others = {g.kind for g in findings(st, app) if g.kind != kind and g.severity_cap != "low"}
    assert others <= app.consequences, others


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_clean_control_is_quiet(store: tuple[Storage, dict[str, patterns.App]], kind: str) -> None:
    st, apps = store
    found = [f for f in findings(st, apps["clean"]) if f.kind == kind]
    # The only thing said about a clean app: its database and cache carry most traffic (capped low).
    assert all(f.severity_cap == "low" and f.entities[0].kind in ("database", "external") for f in found), (
        found
    )


def test_nothing_is_new_without_earlier_data(store: tuple[Storage, dict[str, patterns.App]]) -> None:
    st, apps = store
    kinds = {f.kind for f in detect(st, apps["clean-no-history"])}
    assert not kinds & {"new_dependency", "vanished_dependency"}


def test_evidence_ids_are_stable_across_runs(store: tuple[Storage, dict[str, patterns.App]]) -> None:
    st, apps = store
    first = {(f.kind, f.key, tuple(e.id for e in f.evidence)) for f in findings(st, apps["n_plus_one"])}
    second = {(f.kind, f.key, tuple(e.id for e in f.evidence)) for f in detect(st, apps["n_plus_one"])}
    assert first == second and first


def test_thresholds_are_configurable(store: tuple[Storage, dict[str, patterns.App]]) -> None:
    st, apps = store
    strict = DetectorsConfig.model_validate({"n_plus_one": {"min_calls": 50}, "fan_out": {"enabled": False}})
    kinds = {f.kind for f in detect(st, apps["n_plus_one"], strict)} | {
        f.kind for f in detect(st, apps["fan_out"], strict)
    }
    assert "n_plus_one" not in kinds and "fan_out" not in kinds


def test_a_small_sample_still_finds_and_scales(store: tuple[Storage, dict[str, patterns.App]]) -> None:
    st, apps = store
    cfg = DetectorsConfig.model_validate({"sample": {"per_entry_operation": 20, "max_traces": 60}})
    full = next(f for f in findings(st, apps["n_plus_one"]) if f.kind == "n_plus_one")
    small = next(f for f in detect(st, apps["n_plus_one"], cfg) if f.kind == "n_plus_one")
    assert small.impact.total_traces == full.impact.total_traces
    assert (
        0.4 * full.impact.affected_traces <= small.impact.affected_traces <= 1.6 * full.impact.affected_traces
    )


def test_closed_anomaly_is_not_restated(store: tuple[Storage, dict[str, patterns.App]]) -> None:
    st, apps = store
    app = apps["anomaly"]
    closed = replace(app, anomalies=[{**a, "closed_at": app.end.isoformat()} for a in app.anomalies])
    assert not [f for f in detect(st, closed) if f.kind == "anomaly"]
    f = next(f for f in findings(st, app) if f.kind == "anomaly")
    assert f.root_cause is not None and f.root_cause.entity.id == app.planted[0].entity
    assert {"root_cause", "critical_failure", "impact"} <= set(f.facts)


@pytest.mark.parametrize(
    "anomalies",
    [
        [],
        [{"id": "x"}],
        [{"entity": "checkout", "closed_at": None}],
        [{"entity": {"service": "nobody"}, "features": [{}]}],
    ],
    ids=["none", "no-entity", "entity-not-a-mapping", "unknown-service"],
)
def test_empty_window_and_odd_anomalies_yield_nothing(
    store: tuple[Storage, dict[str, patterns.App]], anomalies: list[dict[str, object]]
) -> None:
    st, _ = store
    start = BASE - timedelta(days=3)  # nothing stored then
    ctx = DetectContext(st, Window(start, start + timedelta(minutes=15)), anomalies=anomalies)
    assert [f for d in build_detectors(DetectorsConfig()) for f in d.detect(ctx)] == []
