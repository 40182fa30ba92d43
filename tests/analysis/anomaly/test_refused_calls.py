"""Refused calls at an instrumented service, on hand-made count rows: the failed-call test
counts calls no server span answered apart from the errors the callee answered, so two refused
calls at a quiet service with routine errors page, while two more answered errors (the callee's
own ``errors`` test judges those) do not page on the edge."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ai.analysis.anomaly.counts import CountRows
from otel_ai.analysis.anomaly.stats import CountTests

W = 60
EMPTY = ([0], [0])
TRAIN = 3 * 1440
EVERY = 9  # one logical call every 9 minutes (0.11/min)


def _rows(burst: str) -> tuple[CountRows, np.ndarray]:
    """``web`` calls ``ledger`` (instrumented) once every ``EVERY`` minutes; in training 1 call in
    25 fails with an error ``ledger`` answered; in the test range the calls at test minutes 27
    and 36 fail, ``refused`` (no server span) or ``answered``."""
    rows, t0 = [], 1_800_000_000
    n = TRAIN + 90
    for i in range(n):
        win = t0 + i * W
        rows.append(("svc", win, "web", "", "", 50, 0, 0, 0, ([40], [50]), ([40], [50]), 0))
        if i % EVERY:
            continue
        k = i // EVERY
        fail = k % 25 == 0 if i < TRAIN else i - TRAIN in (27, 36)
        refused = fail and i >= TRAIN and burst == "refused"
        alias = "" if refused else "ledger"
        rows.append(("call", win, "web", "ledger", alias, 1, int(fail), 0, 1, EMPTY, EMPTY, int(refused)))
        if not refused:
            rows.append(("svc", win, "ledger", "", "", 1, int(fail), 0, 0, ([40], [1]), ([40], [1]), 0))
    return CountRows.from_tuples(rows), np.array([t0 + i * W for i in range(n)], dtype=np.int64)


@pytest.mark.parametrize(
    "burst, edge_pages", [("refused", True), ("answered", False)], ids=["two-refused", "two-answered-errors"]
)
def test_refused_calls_apart_from_answered_errors(burst: str, edge_pages: bool) -> None:
    rows, windows = _rows(burst)
    keep = np.arange(len(windows)) < TRAIN
    ct = CountTests(window_s=W).fit(rows, windows, keep)
    sc = ct.score(rows, windows, first=TRAIN)
    j = next(k for k, f in enumerate(sc.features) if f.metric == "cfail")
    assert sc.features[j].target == "ledger"  # the callee owns it
    assert bool((sc.F[:, j] >= 1.0).any()) is edge_pages, sc.F[20:60, j].max()
