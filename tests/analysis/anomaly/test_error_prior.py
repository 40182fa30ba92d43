"""The errors count test on hand-made count rows: a quiet service with an error-free history
pages on its first two errors (the error share pooled over all services is its prior), while a
quiet service whose own history has routine errors does not."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ai.analysis.anomaly.counts import CountRows
from otel_ai.analysis.anomaly.stats import CountTests

W = 60
EMPTY = ([0], [0])


def _rows(train: int, quiet_errs_every: int, burst: int) -> tuple[CountRows, np.ndarray]:
    """A busy service (50 spans/min, 1 error in 2,000) and a quiet one (one span every 4 minutes;
    an error every ``quiet_errs_every`` of its spans in training, 0 = never); after ``train``
    windows, ``burst`` of the quiet service's next spans fail."""
    rows, t0 = [], 1_800_000_000
    quiet_spans = 0
    for i in range(train + 60):
        win = t0 + i * W
        rows.append(("svc", win, "busy", "", "", 50, int(i % 40 == 0), 0, 0, ([40], [50]), ([40], [50]), 0))
        if i % 4 == 0:
            quiet_spans += 1
            err = int(quiet_errs_every > 0 and quiet_spans % quiet_errs_every == 0) if i < train else 0
            err = 1 if i >= train and (i - train) // 4 < burst else err
            rows.append(("svc", win, "quiet", "", "", 1, err, 0, 0, ([40], [1]), ([40], [1]), 0))
    return CountRows.from_tuples(rows), np.array([t0 + i * W for i in range(train + 60)], dtype=np.int64)


@pytest.mark.parametrize(
    "quiet_errs_every, burst, pages",
    [(0, 2, True), (0, 0, False), (20, 2, False)],
    ids=["error-free-history-two-errors", "no-burst", "routine-errors-two-errors"],
)
def test_quiet_service_first_errors(quiet_errs_every: int, burst: int, pages: bool) -> None:
    train = 3 * 1440
    rows, windows = _rows(train, quiet_errs_every, burst)
    keep = np.arange(len(windows)) < train
    ct = CountTests(window_s=W).fit(rows, windows, keep)
    sc = ct.score(rows, windows, first=train)
    j = next(k for k, f in enumerate(sc.features) if f.service == "quiet" and f.metric == "errors")
    assert bool((sc.F[:, j] >= 1.0).any()) is pages
