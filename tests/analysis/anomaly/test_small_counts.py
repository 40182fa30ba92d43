"""Stored-span tests of the small-count rules (two events suffice where a pooled prior makes
them very unlikely): two refused calls to an uninstrumented peer that never refused, two queue
messages far beyond a quiet consumer's training maximum, and two spans far beyond a quiet
service's training maximum all page with the right root cause, while the clean hours of the
same application (a slot without a fault, and a +10 % deploy step) do not page."""

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

SEED = 1
RATE = 10.0  # entry requests/min: most services, the queue and the peers are quiet
TRAIN_H = 24
SLOT_S = 40 * 60
PEER = "ext-geo-1"  # ~1.2 calls/min, 1e-4 failures in training
CONSUMER = "billing-worker"  # ~0.3 messages/min
QUIET = "shipping"  # ~0.5 requests/min
T0 = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(chdb_path: Path) -> Iterator[dict[str, Any]]:
    app = ra.random_app(SEED, rate=RATE, n_services=8)
    assert app.services[app.consumer] == CONSUMER and PEER in {u.peer for u in app.units}
    st = storage_at(f"chdb://{chdb_path}", unique_db(), ttl_days=0)
    st.start()
    t0 = int(T0.timestamp())  # a fixed instant: the same spans (and the same 2 events) on every run
    T = t0 + TRAIN_H * 3600
    cases = {
        "refused": ra.Fault("unreachable", PEER, T + 480, T + 600, 1.0),
        "late": ra.Fault("lag", CONSUMER, T + SLOT_S + 900, T + SLOT_S + 1200, 60.0),
        "slow": ra.Fault("latency", QUIET, T + 2 * SLOT_S + 780, T + 2 * SLOT_S + 1080, 10.0),
        "deploy": ra.Fault("deploy", QUIET, T + 4 * SLOT_S + 600, T + 6 * SLOT_S, 1.1),
    }
    minutes = TRAIN_H * 60 + 5 * SLOT_S // 60
    ra.write(st, app, t0, minutes, list(cases.values()), SEED)
    svc = AnomalyService(st, AnomalyConfig(min_history_s=0, max_iter=100, example_traces=0))
    svc.start()
    at = lambda ts: datetime.fromtimestamp(ts, UTC)  # noqa: E731
    found = svc.detect(at(T), at(T + 5 * SLOT_S), at(t0), at(T))
    yield {"found": found, "cases": cases, "storage": st, "T": T}
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def _opened(a: dict[str, Any]) -> float:
    return datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00")).timestamp()


def _changed(world: dict[str, Any], case: str) -> int:
    """Spans the fault changed, counted from the store (the test is about 2 of them)."""
    f, st = world["cases"][case], world["storage"]
    rng = {"db": st.database, "a": datetime.fromtimestamp(f.start, UTC).replace(tzinfo=None),
           "b": datetime.fromtimestamp(f.end, UTC).replace(tzinfo=None)}  # fmt: skip
    where = "Timestamp >= {a:DateTime64(9)} AND Timestamp < {b:DateTime64(9)}"
    sql = {
        "refused": "SpanKind = 'Client' AND SpanAttributes['peer.service'] = {t:String} AND StatusCode = 'Error'",
        "late": "SpanKind = 'Consumer' AND ServiceName = {t:String}",
        "slow": "SpanKind = 'Server' AND ServiceName = {t:String}",
    }[case]
    rows = st.query(f"SELECT count() FROM {{db:Identifier}}.otel_traces WHERE {where} AND {sql}",
                    {**rng, "t": f.target})  # fmt: skip
    return int(rows[0][0])


@pytest.mark.parametrize(
    "case, cause, metric",
    [("refused", PEER, "cfail"), ("late", CONSUMER, "lag_far"), ("slow", QUIET, "self_far")],
    ids=["two-refused-calls-at-a-peer", "two-late-messages-at-a-quiet-consumer", "two-far-slow-spans-quiet-service"],
)  # fmt: skip
def test_two_events_page(world: dict[str, Any], case: str, cause: str, metric: str) -> None:
    assert _changed(world, case) == 2
    f = world["cases"][case]
    hits = [
        a for a in world["found"] if f.start - 300 <= _opened(a) <= f.end + 300 and a["severity"] != "info"
    ]
    assert hits, [(a["opened_at"], a["evidence"]["abnormal"]) for a in world["found"]]
    a = hits[0]
    assert a["root_causes"][0]["service"] == cause, (a["root_causes"][:3], a["evidence"]["abnormal"])
    assert metric in a["evidence"]["abnormal"].get(cause, []), a["evidence"]["abnormal"]


def test_clean_hours_do_not_page(world: dict[str, Any]) -> None:
    faults = [world["cases"][c] for c in ("refused", "late", "slow")]
    paged = [a for a in world["found"] if a["severity"] != "info"
             and not any(f.start - 300 <= _opened(a) <= f.end + 300 for f in faults)]  # fmt: skip
    assert not paged, [(a["opened_at"], a["evidence"]["abnormal"]) for a in paged]


def test_the_far_line_is_twice_the_least_the_maximum_can_be() -> None:
    """The histograms know a training maximum only to its bucket (x1.19 wide): the far line is
    twice that bucket's lower edge, so two spans at 2.1x and 3.5x an 11.9 ms maximum (a x10
    self-time slowdown at a 0.09 req/min service, held-out seed 62) are both beyond it. At twice
    the upper edge (27.6 ms) the first was not, and one span never pages."""
    import numpy as np

    from otel_ai.analysis.anomaly.counts import N_BUCKETS, bucket_upper_ms
    from otel_ai.analysis.anomaly.stats import _far_bucket, threshold_ms

    def bucket(ms: float) -> int:
        return int(np.argmax(bucket_upper_ms(np.arange(N_BUCKETS)) >= ms))

    hist = np.zeros(N_BUCKETS)
    for ms in (3.1, 5.3, 5.3, 7.8, 11.9):  # training self-times; the maximum 11.9 ms
        hist[bucket(ms)] += 1
    line = threshold_ms(_far_bucket(hist))
    lower_edge = float(bucket_upper_ms(bucket(11.9) - 1))
    assert line == pytest.approx(2 * lower_edge)
    assert 2 * lower_edge <= 2 * 11.9 <= 2 * float(bucket_upper_ms(bucket(11.9)))  # the rule's range
    assert line < 25.4 < 41.8  # both slow spans count


def test_three_errors_in_thirteen_requests_page_at_the_default_budget() -> None:
    """Held-out seed 71: a 15 % error burst at a 1.45 req/min service (error share 0.2 % with the
    pooled prior) showed as 3 failed requests of 13 in its 15-minute sum, p ~ 2.6e-6. The
    Bonferroni level of the old budget (1e-3 over the application's 694 test-resolution pairs,
    1.4e-6) left it unpaged; the default budget's (4.3e-6) pages it."""
    import numpy as np

    from otel_ai.analysis.anomaly.features import Feature
    from otel_ai.analysis.anomaly.stats import CountTests, TestSpec, bonferroni_level

    pairs = 694
    t = TestSpec(Feature("service", "media", "errors"), [15], p0=0.00205, disp={15: 5.7e-7})
    K, N = np.array([3.0]), np.array([13.0])
    s = float(CountTests()._surprise(t, 15, K, N, N * t.p0)[0])
    assert bonferroni_level(AnomalyConfig().count_false_alarm_rate, pairs) < s < bonferroni_level(1e-3, pairs)
