"""The tracker and the anomaly description on a hand-made scored frame (no storage, no model):
root causes are re-ranked while the anomaly is young, then kept."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.engine import Scored, Tracker, describe
from otel_ai.analysis.anomaly.features import Feature, FeatureFrame

W = 60


def _scored(payment_from: int, n: int = 20) -> Scored:
    """frontend → checkout → payment; errors on frontend and checkout from window 2 (a busy
    caller's count window crossing first), payment's own errors from ``payment_from``."""
    feats = [Feature("service", s, "errors") for s in ("frontend", "checkout", "payment")]
    F = np.zeros((n, 3))
    F[2:, 0] = F[2:, 1] = 3.0
    F[payment_from:, 2] = 5.0
    windows = np.arange(n, dtype=np.int64) * W + 1_800_000_000
    raw = np.where(F > 0, 0.5, 0.01)
    frame = FeatureFrame(windows, W, feats, raw.copy(), raw, np.zeros((n, 2)), ["checkout", "frontend", "payment"],
                         [("frontend", "checkout"), ("checkout", "payment")])  # fmt: skip
    sc = Scored(frame, F, np.full((n, 3), 0.01), 1.0, "test")
    sc.S = {f.service: F[:, j] for j, f in enumerate(feats)}
    sc.unloaded = dict(sc.S)
    return sc


def _replay(sc: Scored, rerank_s: int) -> list[str]:
    cfg = AnomalyConfig(rerank_s=rerank_s)
    tracker, view = Tracker(cfg), None
    for i in range(len(sc.frame.windows)):
        for event, track in tracker.step(sc, i):
            view = describe(track, sc, closed=event == "close", open_after=cfg.open_after, rerank_s=rerank_s)
    assert view is not None
    return [str(r["service"]) for r in view["root_causes"]]


@pytest.mark.parametrize(
    "payment_from, rerank_s, first",
    [(3, 300, "payment"), (3, 0, "checkout"), (12, 300, "checkout")],
    ids=["callee-crosses-while-young", "frozen-at-the-alert", "callee-crosses-after-the-young-period"],
)
def test_root_cause_reranked_while_young_then_kept(payment_from: int, rerank_s: int, first: str) -> None:
    assert _replay(_scored(payment_from), rerank_s)[0] == first


def _one_service(excess: float, n: int = 10) -> Scored:
    """One service above the alarm level from window 3 on, its count test ``excess`` decades beyond."""
    feats = [Feature("service", "pay", "errors")]
    F = np.zeros((n, 1))
    F[3:, 0] = 2.0
    windows = np.arange(n, dtype=np.int64) * W + 1_800_000_000
    frame = FeatureFrame(windows, W, feats, F.copy(), F.copy(), np.zeros((n, 2)), ["pay"], [])
    sc = Scored(frame, F, np.zeros((n, 1)), 1.0, "test")
    sc.S = sc.unloaded = {"pay": F[:, 0]}
    sc.strong = {"pay": np.where(F[:, 0] > 0, excess, 0.0)}
    return sc


@pytest.mark.parametrize(
    "excess, open_strong, opened_at",
    [(3.0, 2.0, 3), (1.5, 2.0, 4), (3.0, 0.0, 4)],
    ids=["far-beyond-opens-at-once", "just-beyond-waits-a-window", "rule-off"],
)
def test_strong_count_evidence_opens_after_one_window(
    excess: float, open_strong: float, opened_at: int
) -> None:
    sc = _one_service(excess)
    tracker = Tracker(AnomalyConfig(open_strong=open_strong))
    opened = [i for i in range(len(sc.frame.windows)) for ev, _ in tracker.step(sc, i) if ev == "open"]
    assert opened == [opened_at]
    assert tracker.tracks[0].first == int(sc.frame.windows[3])  # the first abnormal window, not before


def _rearmed(recent_level: float, at: int, n: int = 60, strong: float = 0.0) -> Scored:
    """A quiet service's fault in windows 3-8 (every window's score above the alarm level), then
    from window ``at`` its 30-minute count sum is above the level again (it still holds the
    fault's slow spans, re-armed by one routine span), its short windows at ``recent_level``."""
    feats = [Feature("service", "search", "slow")]
    S = np.zeros(n)
    S[3:9] = 3.0
    S[at : at + 4] = 2.0
    recent = np.where(S == 3.0, 3.0, 0.0)
    recent[at : at + 4] = recent_level
    windows = np.arange(n, dtype=np.int64) * W + 1_800_000_000
    frame = FeatureFrame(
        windows, W, feats, S[:, None].copy(), S[:, None].copy(), np.zeros((n, 2)), ["search"], []
    )
    sc = Scored(frame, S[:, None].copy(), np.zeros((n, 1)), 1.0, "test")
    sc.S = sc.unloaded = {"search": S}
    sc.recent = {"search": recent}
    # the long sum's count test far beyond its level; the short windows' as ``strong`` says
    sc.strong = {"search": np.where(S > 0, 3.0, 0.0)}
    sc.recent_strong = {"search": np.where(recent > 0, strong, 0.0)}
    return sc


@pytest.mark.parametrize(
    "recent_level, strong, at, opened",
    [(0.0, 0.0, 20, [3]), (2.0, 0.0, 20, [3, 21]), (2.0, 3.0, 20, [3, 20]), (0.0, 0.0, 45, [3, 45])],
    ids=["long-window-re-armed-does-not-page", "new-short-window-evidence-pages",
         "strong-short-window-evidence-pages-at-once", "after-the-longest-window"],
)  # fmt: skip
def test_recovered_service_judged_on_short_windows(
    recent_level: float, strong: float, at: int, opened: list[int]
) -> None:
    """The anomaly recovers at window 13 (5 quiet windows); until the 30-minute window has rolled
    past (window 43) only the short windows can page the service again."""
    sc = _rearmed(recent_level, at, strong=strong)
    tracker = Tracker(AnomalyConfig())
    events = [(i, ev) for i in range(len(sc.frame.windows)) for ev, _ in tracker.step(sc, i)]
    assert [i for i, ev in events if ev == "open"] == opened
    assert (13, "close") in events


@pytest.mark.parametrize(
    "cool_down_restored, opened", [(True, []), (False, [20])], ids=["restored", "forgotten"]
)
def test_a_restart_keeps_the_cool_down_of_a_recovered_service(
    cool_down_restored: bool, opened: list[int]
) -> None:
    """The daemon restarts at window 16, after the anomaly recovered (13): the stored, closed
    anomaly brings the cool-down back, and the re-armed long window at 20 does not page."""
    sc = _rearmed(0.0, 20)
    before, closed = Tracker(AnomalyConfig()), None
    for i in range(16):
        for event, track in before.step(sc, i):
            if event == "close":
                closed = describe(track, sc, closed=True)
    assert closed is not None and closed["evidence"]["close_reason"] == "recovered"
    after = Tracker(AnomalyConfig())
    after.restore([])
    if cool_down_restored:
        after.restore_recovered([closed])
    events = [(i, ev) for i in range(16, len(sc.frame.windows)) for ev, _ in after.step(sc, i)]
    assert [i for i, ev in events if ev == "open"] == opened


def test_entity_is_the_root_cause_not_the_edge_into_it() -> None:
    """A payment error burst whose client-side figure (checkout → payment errors) peaks above
    payment's own: the root cause is payment, and so is the anomaly's entity."""
    n = 12
    feats = [Feature("edge", "checkout", "err", target="payment"), Feature("service", "payment", "err")]
    F = np.zeros((n, 2))
    F[3:9, 0], F[3:9, 1] = 6.0, 5.0
    windows = np.arange(n, dtype=np.int64) * W + 1_800_000_000
    raw = np.where(F > 0, 0.5, 0.01)
    frame = FeatureFrame(windows, W, feats, raw.copy(), raw, np.zeros((n, 2)), ["checkout", "payment"],
                         [("checkout", "payment")])  # fmt: skip
    sc = Scored(frame, F, np.full((n, 2), 0.01), 1.0, "test")
    sc.S = sc.unloaded = {"payment": F.max(axis=1)}
    tracker, view = Tracker(AnomalyConfig()), None
    for i in range(n):
        for event, track in tracker.step(sc, i):
            view = describe(track, sc, closed=event == "close")
    assert view is not None
    assert view["root_causes"][0]["service"] == "payment"
    assert view["features"][0]["name"].startswith("checkout→payment")  # the strongest figure: the edge
    assert view["entity"] == {"kind": "service", "service": "payment", "operation": None, "target": None}
