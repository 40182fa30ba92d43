"""End to end on stored spans: an injected fault is found and blamed on the right service and
figure; a flash crowd does not page; the model survives a restart; the scheduled cycle runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from otel_ai.analysis.anomaly import synthetic as syn
from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.service import AnomalyService
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at

TRAIN_MIN = 24 * 60
TEST_MIN = 120
T0 = datetime(2026, 11, 30, 3, tzinfo=UTC)
# The same world starting an hour later: there a one-minute spike of the frontend's error ratio
# during the flash crowd used to split a second traffic note off the first.
T0_LATER = datetime(2026, 11, 30, 4, tzinfo=UTC)
STARTS = pytest.mark.parametrize("name", ["world", "world_later"], ids=["03h00", "04h00"])


@pytest.fixture(scope="module")
def world(chdb_path: Path) -> Iterator[dict[str, Any]]:
    yield from _world(chdb_path, T0)


@pytest.fixture(scope="module")
def world_later(chdb_path: Path) -> Iterator[dict[str, Any]]:
    yield from _world(chdb_path, T0_LATER)


def _world(chdb_path: Path, t0: datetime) -> Iterator[dict[str, Any]]:
    """One day of clean traffic, then 2 h with a payment slowdown and a flash crowd; ``t0`` is a
    fixed instant: the same spans on every run (the time of day moves the figures)."""
    st = storage_at(f"chdb://{chdb_path}", unique_db(), ttl_days=0)
    st.start()
    T = int(t0.timestamp()) + TRAIN_MIN * 60
    faults = [
        syn.Fault("payment", T + 20 * 60, T + 35 * 60, latency_ms=40),
        syn.Fault("frontend", T + 70 * 60, T + 90 * 60, rate_factor=3.0),
    ]
    syn.write(st, t0, TRAIN_MIN + TEST_MIN, syn.SynthConfig(faults=faults, seed=1))
    cfg = AnomalyConfig(min_history_s=0, max_iter=150)
    svc = AnomalyService(st, cfg)
    svc.start()
    found = svc.detect(
        t0 + timedelta(minutes=TRAIN_MIN), t0 + timedelta(minutes=TRAIN_MIN + TEST_MIN),
        t0, t0 + timedelta(minutes=TRAIN_MIN),
    )  # fmt: skip
    yield {"storage": st, "svc": svc, "found": found, "T": T, "cfg": cfg, "t0": t0}
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def _within(a: dict[str, Any], start: int, end: int) -> bool:
    opened = datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00")).timestamp()
    return start - 300 <= opened <= end


@STARTS
def test_injected_fault_detected_and_attributed(request: pytest.FixtureRequest, name: str) -> None:
    world = request.getfixturevalue(name)
    T = world["T"]
    hits = [a for a in world["found"] if _within(a, T + 20 * 60, T + 35 * 60)]
    assert len(hits) == 1, [(a["opened_at"], a["root_causes"][:2]) for a in world["found"]]
    a = hits[0]
    assert a["severity"] in ("warning", "critical")
    assert a["root_causes"][0]["service"] == "payment"
    names = [f["feature"] for f in a["features"]]
    assert any(n.startswith("service|payment|") and n.endswith(("self", "p50", "p95")) for n in names), names
    payment = next(f for f in a["features"] if f["feature"].startswith("service|payment|"))
    assert payment["ratio"] > 2 and payment["value"] > payment["baseline"]
    assert abs(datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00")).timestamp() - (T + 1200)) <= 120
    assert a["evidence"]["trace_ids"] and len(a["evidence"]["trace_ids"][0]) == 32
    stored = world["svc"].get(a["id"])
    assert stored is not None and stored["root_causes"] == a["root_causes"]


@STARTS
def test_flash_crowd_does_not_page(request: pytest.FixtureRequest, name: str) -> None:
    world = request.getfixturevalue(name)
    T = world["T"]
    during = [a for a in world["found"] if _within(a, T + 70 * 60, T + 90 * 60)]
    assert all(a["severity"] == "info" and a["root_causes"] == [] for a in during), [
        (a["severity"], a["evidence"]["abnormal"]) for a in during
    ]
    assert len(during) <= 1, [(a["opened_at"], a["closed_at"], a["evidence"]["abnormal"]) for a in during]


def test_model_persists_and_live_cycle_runs(world: dict[str, Any]) -> None:
    svc, st, cfg, t0 = world["svc"], world["storage"], world["cfg"], world["t0"]
    now = t0 + timedelta(minutes=TRAIN_MIN)
    assert svc.retrain(now) is True
    again = AnomalyService(st, cfg)
    again.start()
    assert again.model is not None and again.model.model_id == svc.model.model_id
    assert [f.name for f in again.model.features] == [f.name for f in svc.model.features]
    # Live cycles over the fault: the scheduled job's code path pages on the payment slowdown.
    T = world["T"]
    opened: list[dict[str, Any]] = []
    for minute in range(15, 30):
        opened += again.run_cycle(datetime.fromtimestamp(T + minute * 60 + 30, UTC))
    assert any(a["root_causes"] and a["root_causes"][0]["service"] == "payment" for a in opened)
    listed = again.list(t0, datetime.now(UTC), service="payment")
    assert any(a["source"] == "live" for a in listed)


def test_jobs_registered() -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler()
    svc = AnomalyService(None, AnomalyConfig(interval_s=30))  # type: ignore[arg-type]
    svc.register_jobs(sched)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {"anomaly-detect", "anomaly-retrain"}
    assert jobs["anomaly-detect"].trigger.interval.total_seconds() == 30


def test_restart_resumes_open_anomaly_without_paging_again(world: dict[str, Any]) -> None:
    """A restart in the middle of an incident: the stored open anomaly is resumed (same id, same
    root cause as at the alert), not opened a second time, and it closes once the fault ends."""
    st, cfg, T = world["storage"], world["cfg"], world["T"]
    first = AnomalyService(st, cfg)
    first.start()
    first.tracker.tracks, first._last_window = [], None  # a clean live run for this test
    opened = []
    for minute in range(18, 27):
        opened += [a for a in first.run_cycle(datetime.fromtimestamp(T + minute * 60 + 30, UTC))
                   if a["closed_at"] is None]  # fmt: skip
    assert opened, "the payment slowdown should page during minutes 18-27"
    alert = opened[0]
    assert alert["root_causes"][0]["service"] == "payment"
    # "Restart": a new service over the same storage.
    second = AnomalyService(st, cfg)
    second.start()
    assert alert["id"] in {t.anomaly_id for t in second.tracker.tracks}
    later = []
    for minute in range(27, 60):
        later += second.run_cycle(datetime.fromtimestamp(T + minute * 60 + 30, UTC))
    payment = [a for a in later if "payment" in a["evidence"]["services"]]
    assert payment and {a["id"] for a in payment} == {alert["id"]}, [
        (a["id"], a["opened_at"]) for a in payment
    ]
    final = second.get(alert["id"])
    assert final is not None and final["closed_at"] is not None
    assert final["root_causes"] == alert["root_causes"]  # described at the alert, not at close
    # The recovery's cool-down survives the next restart: the store hands back what closed since.
    since = datetime.fromisoformat(final["closed_at"]) - timedelta(seconds=1)
    recent = second.store.closed_since(since)
    assert [a["id"] for a in recent] == [alert["id"]]
    assert second.store.closed_since(since + timedelta(seconds=2)) == []
    third = AnomalyService(st, cfg)
    third.tracker.restore_recovered(recent)
    closed_window = (
        int(datetime.fromisoformat(final["closed_at"]).timestamp()) + (cfg.close_after - 1) * cfg.window_s
    )
    assert third.tracker.recovered.get("payment") == closed_window
