"""Long windows alarm only while new evidence arrives, on hand-made count rows: a quiet
consumer's late messages page during the lag fault, and its 15/30-minute sums stop alarming
within 5 minutes of the last late message (they used to stay abnormal for half the window,
the paging false alarm 14 minutes after a lag fault ended)."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ai.analysis.anomaly.counts import CountRows
from otel_ai.analysis.anomaly.stats import CountTests

W = 60
EMPTY = ([0], [0])
TRAIN = 3 * 1440


def _rows(fault: tuple[int, int], bucket: int) -> tuple[CountRows, np.ndarray]:
    """A consumer with one message a minute (lag bucket 40, every 20th at 44); during ``fault``
    (test windows) every message waits in bucket ``bucket``; a busy service beside it."""
    rows, t0 = [], 1_800_000_000
    n = TRAIN + 120
    for i in range(n):
        win = t0 + i * W
        rows.append(("svc", win, "api", "", "", 50, 0, 0, 0, ([40], [50]), ([40], [50]), 0))
        late = fault[0] <= i - TRAIN < fault[1]
        b = bucket if late else (44 if i % 20 == 0 else 40)
        rows.append(("lag", win, "worker", "orders", "", 1, 0, 0, 0, ([b], [1]), EMPTY, 0))
    return CountRows.from_tuples(rows), np.array([t0 + i * W for i in range(n)], dtype=np.int64)


@pytest.mark.parametrize("bucket", [52, 60], ids=["late-x8", "late-x64"])
def test_long_window_closes_after_the_fault(bucket: int) -> None:
    fault = (30, 42)  # 12 test minutes of late messages
    rows, windows = _rows(fault, bucket)
    train, _ = _rows((0, 0), bucket)  # the same history without the fault: fit on the training range
    ct = CountTests(window_s=W).fit(train, windows[:TRAIN])
    j = next(k for k, t in enumerate(ct.tests) if t.feature.metric == "lag")
    assert max(ct.tests[j].res) * W >= 1800  # a quiet queue: scored on the 15 and 30-minute sums
    F = ct.score(rows, windows, first=TRAIN).F[:, j]
    assert (F[fault[0] : fault[1]] >= 1.0).any(), F[fault[0] : fault[1] + 20]
    after = fault[1] + 5  # the last late message has left the newest 5 minutes
    assert not (F[after:] >= 1.0).any(), (np.flatnonzero(F >= 1.0), F[fault[1] : after + 20])
