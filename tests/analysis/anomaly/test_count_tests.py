"""Stored-span tests of the count tests on a random application (``randomapp``): a quiet
service's x5 slowdown (at ~2 and at ~0.5 requests/min), a retry storm (at a busy and at a quiet
caller), a queue lag and a -60 % traffic drop are found with the right root cause; a +10 % deploy
step does not page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from otel_ai.analysis.anomaly import randomapp as ra
from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.service import AnomalyService
from otel_ai.testing.daemons import unique_db
from otel_ai.testing.stores import storage_at

SEED = 10
TRAIN_H = 24
SLOT_S = 40 * 60
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _pick(app: ra.App) -> dict[str, Any]:
    vol = app.volume()
    quiet = min((s for s in app.services[1:] if 1.0 <= vol[s] < 5.0), key=lambda s: vol[s])
    caller, callee = next((app.services[u.caller], u.peer) for u in app.units
                          if u.kind == "svc" and vol[app.services[u.caller]] >= 10 and u.p >= 0.5)  # fmt: skip
    busy = max(app.services[1:], key=lambda s: vol[s])
    # under 1 request/min: scored on the 30-minute window with the p99.8 as its "slow" line
    quietest = min((s for s in app.services[1:] if 0.3 <= vol[s] < 1.0), key=lambda s: vol[s])
    qcaller, qcallee = min(((app.services[u.caller], u.peer) for u in app.units if u.kind == "svc"
                            and 0.2 <= vol[app.services[u.caller]] * u.p < 1.0),
                           key=lambda cp: vol[cp[0]])  # fmt: skip
    return {"quiet": quiet, "caller": caller, "callee": callee, "busy": busy, "vol": vol, "quietest": quietest,
            "qcaller": qcaller, "qcallee": qcallee}  # fmt: skip


@pytest.fixture(scope="module")
def world(chdb_path: Path) -> Iterator[dict[str, Any]]:
    app = ra.random_app(SEED, rate=60.0, n_services=8)
    who = _pick(app)
    st = storage_at(f"chdb://{chdb_path}", unique_db(), ttl_days=0)
    st.start()
    t0 = int(T0.timestamp())  # a fixed instant: the same spans on every run (no TTL on this store)
    T = t0 + TRAIN_H * 3600
    cases = {
        "slow": ra.Fault("latency", who["quiet"], T + 10 * 60, T + 25 * 60, 5.0),
        "retry": ra.Fault(
            "retry", who["caller"], T + SLOT_S + 600, T + SLOT_S + 1500, 4, callee=who["callee"]
        ),
        "lag": ra.Fault("lag", app.services[app.consumer], T + 2 * SLOT_S + 600, T + 2 * SLOT_S + 1500, 30.0),
        "drop": ra.Fault("traffic", app.services[0], T + 3 * SLOT_S + 600, T + 3 * SLOT_S + 1500, 0.4),
        "slow-quietest": ra.Fault(
            "latency", who["quietest"], T + 4 * SLOT_S + 600, T + 4 * SLOT_S + 1500, 5.0
        ),
        "retry-quiet": ra.Fault(
            "retry", who["qcaller"], T + 5 * SLOT_S + 600, T + 5 * SLOT_S + 1500, 3, callee=who["qcallee"]
        ),
        "deploy": ra.Fault("deploy", who["busy"], T + 6 * SLOT_S + 600, T + 8 * SLOT_S, 1.1),
    }
    minutes = TRAIN_H * 60 + 7 * SLOT_S // 60 + 20
    ra.write(st, app, t0, minutes, list(cases.values()), SEED)
    cfg = AnomalyConfig(min_history_s=0, max_iter=100, example_traces=0)
    svc = AnomalyService(st, cfg)
    svc.start()
    at = lambda ts: datetime.fromtimestamp(ts, UTC)  # noqa: E731
    found = svc.detect(at(T), at(T + 7 * SLOT_S), at(t0), at(T))
    yield {"found": found, "cases": cases, "app": app, "who": who}
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def _opened(a: dict[str, Any]) -> float:
    return datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00")).timestamp()


def _during(world: dict[str, Any], case: str) -> list[dict[str, Any]]:
    f = world["cases"][case]
    return [a for a in world["found"] if f.start - 300 <= _opened(a) <= f.end + 300]


@pytest.mark.parametrize(
    "case, cause, metric",
    [("slow", "quiet", "self_slow"), ("retry", "caller", "retries"), ("lag", "consumer", "lag"),
     ("drop", "entry", "volume"), ("slow-quietest", "quietest", "self_slow"), ("retry-quiet", "qcaller", "retries")],
    ids=["quiet-service-x5-slowdown", "retry-storm", "queue-lag", "traffic-drop-60pct", "x5-slowdown-under-1-per-min",
         "retry-storm-quiet-caller"],
)  # fmt: skip
def test_fault_found_with_its_root_cause(world: dict[str, Any], case: str, cause: str, metric: str) -> None:
    app, who = world["app"], world["who"]
    expected = {"quiet": who["quiet"], "caller": who["caller"], "consumer": app.services[app.consumer],
                "entry": app.services[0], "quietest": who["quietest"], "qcaller": who["qcaller"]}[cause]  # fmt: skip
    hits = [a for a in _during(world, case) if a["severity"] != "info"]
    assert hits, (case, expected, [(a["opened_at"], a["evidence"]["abnormal"]) for a in world["found"]])
    a = hits[0]
    assert a["root_causes"][0]["service"] == expected, (a["root_causes"][:3], a["evidence"]["abnormal"])
    assert metric in a["evidence"]["abnormal"].get(expected, []), a["evidence"]["abnormal"]
    # a quiet service is scored on longer windows: the delay grows with quietness (minutes, not hours)
    alerted = datetime.fromisoformat(a["evidence"]["alerted_at"].replace("Z", "+00:00")).timestamp()
    if case == "slow":
        assert who["vol"][expected] < 5 and alerted - world["cases"][case].start <= 12 * 60
    if case == "slow-quietest":
        assert who["vol"][expected] < 1 and alerted - world["cases"][case].start <= 20 * 60


def test_deploy_step_does_not_page(world: dict[str, Any]) -> None:
    paged = [a for a in _during(world, "deploy") if a["severity"] != "info"]
    assert not paged, [(a["opened_at"], a["evidence"]["abnormal"]) for a in paged]
