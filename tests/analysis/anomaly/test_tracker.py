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
