"""The feature SQL against spans whose figures are known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from otel_ai.analysis.anomaly.features import extract
from otel_ai.analysis.anomaly.synthetic import COLUMNS
from otel_ai.storage import Storage


def _span(
    ts: datetime, trace: int, span: int, parent: int, svc: str, name: str, ms: float, err: bool
) -> list:
    return [ts, f"{trace:032x}", f"{span:016x}", f"{parent:016x}" if parent else "", name, "Server", svc,
            int(ms * 1e6), "Error" if err else "Unset"]  # fmt: skip


def test_window_features_match_known_spans(storage: Storage) -> None:
    t0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    rows = []
    # Window 0: three checkout requests (10, 20, 30 ms; one error), each calling payment once (4 ms).
    for k, (ms, err) in enumerate([(10, False), (20, True), (30, False)]):
        ts = t0 + timedelta(seconds=5 + k)
        rows.append(_span(ts, 100 + k, 10 * k + 1, 0, "checkout", "PlaceOrder", ms, err))
        rows.append(_span(ts, 100 + k, 10 * k + 2, 10 * k + 1, "payment", "Charge", 4, False))
    # Window 1: one checkout request whose payment call is missing.
    rows.append(_span(t0 + timedelta(seconds=70), 200, 99, 0, "checkout", "PlaceOrder", 8, False))
    storage.insert("otel_traces", [list(c) for c in zip(*rows, strict=True)], COLUMNS, column_oriented=True)
    fr = extract(storage, t0, t0 + timedelta(minutes=3), 60, min_count=1)
    assert len(fr.windows) == 3 and fr.services == ["checkout", "payment"]
    assert fr.edges == [("checkout", "payment")]
    col = {f.name: j for j, f in enumerate(fr.features)}

    def raw(name: str, i: int) -> float:
        return float(fr.raw[i, col[name]])

    assert raw("service|checkout|||rate", 0) == 3 and raw("service|checkout|||rate", 1) == 1
    assert raw("service|checkout|||rate", 2) == 0  # an empty window is zero traffic, not missing
    assert raw("service|checkout|||err", 0) == pytest.approx((1 + 1) / (3 + 2))
    assert raw("service|checkout|||p50", 0) == pytest.approx(20, rel=0.05)
    assert raw("service|checkout|||self", 0) == pytest.approx((6 + 16 + 26) / 3, rel=1e-6)
    assert raw("service|payment|||childless", 0) == 1.0 and raw("service|checkout|||childless", 0) == 0.0
    assert raw("service|checkout|||spans_per_trace", 0) == 1.0
    assert raw("edge|checkout||payment|cpr", 0) == 1.0
    assert raw("edge|checkout||payment|cpr", 1) == 0.0  # the missing expected child
    assert raw("edge|checkout||payment|p95", 0) == pytest.approx(4, rel=0.05)
    assert np.isnan(raw("service|checkout|||p50", 2))  # masked: no traffic
    # Transforms: latency in log-ms, rate log1p.
    assert fr.X[0, col["service|checkout|||rate"]] == pytest.approx(np.log1p(3))
    assert fr.context.shape == (3, 2)


def test_min_errors_floor(storage: Storage) -> None:
    t0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    rows = [_span(t0 + timedelta(seconds=1), 1, 1, 0, "a", "op", 5, True),
            _span(t0 + timedelta(seconds=2), 2, 2, 0, "a", "op", 5, False)]  # fmt: skip
    storage.insert("otel_traces", [list(c) for c in zip(*rows, strict=True)], COLUMNS, column_oriented=True)
    fr = extract(storage, t0, t0 + timedelta(minutes=1), 60, min_count=1, min_errors=5)
    assert fr.raw[0, [f.name for f in fr.features].index("service|a|||err")] == pytest.approx(1 / 4)


def test_scoring_cycles_read_each_window_once_with_late_spans_refreshed(storage: Storage) -> None:
    """``WindowRows``: consecutive cycles over a sliding 30-window range read only the newest
    windows (plus the refreshed ones and one of context), and give the rows a whole-range read
    gives; a span stored late into a refreshed window is counted, the range start is honoured."""
    from otel_ai.analysis.anomaly import synthetic as syn
    from otel_ai.analysis.anomaly.features import Rows, WindowRows, fetch_rows

    w, lookback = 60, 30
    t0 = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    syn.write(storage, t0, 60, syn.SynthConfig(seed=3))
    base = int(t0.timestamp())
    # A call across a window boundary: the parent ends window 34, its child starts window 35 — the
    # window that cycle 39 reads again first (its edge needs the window before it in the read).
    edge = [
        _span(datetime.fromtimestamp(base + 35 * w - 0.05, UTC), 777, 1, 0, "edge-a", "call", 9, False),
        _span(datetime.fromtimestamp(base + 35 * w + 0.05, UTC), 777, 2, 1, "edge-b", "serve", 5, False),
    ]
    storage.insert("otel_traces", [list(c) for c in zip(*edge, strict=True)], COLUMNS, column_oriented=True)
    cache = WindowRows(refresh=3)

    def rows_of(r: Rows) -> list[tuple]:
        cols = [r.kind, r.win, r.svc, r.op, r.dst, r.n, r.errs, r.self_ns, r.childless, r.nspans, r.ntraces]
        return sorted(zip(*[c.tolist() for c in cols], strict=True))

    for k in range(lookback, 45):
        start, end = base + (k - lookback) * w, base + k * w
        if k == 40:  # a late span lands in the oldest window a cycle reads again
            late = _span(
                datetime.fromtimestamp(end - 4 * w + 7, UTC), 999, 999, 0, "late-svc", "op", 5, False
            )
            storage.insert(
                "otel_traces", [list(c) for c in zip(late, strict=True)], COLUMNS, column_oriented=True
            )
        before = cache.windows_read
        got = cache.fetch(storage, start, end, w)
        whole = fetch_rows(storage, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), w)
        # The whole-range read misses its first window's parents (they lie before the range); the
        # cache kept that window as read when its parents were in range. Every later window agrees.
        first = int(whole.win.min())
        same = [r for r in rows_of(got) if r[1] > first]
        assert same == [r for r in rows_of(whole) if r[1] > first], k
        assert int(got.win.min()) >= start and int(got.win.max()) < end
        read = cache.windows_read - before
        assert read == (lookback if k == lookback else 5), (k, read)  # 1 new + 3 refreshed + 1 context
        if k >= 40:
            assert "late-svc" in set(got.svc.tolist())
        if k >= 36:
            assert ("edge", base + 35 * w, "edge-a", "edge-b") in {
                (r[0], r[1], r[2], r[4]) for r in rows_of(got)
            }
    # A range that does not continue the last one is read whole.
    before = cache.windows_read
    cache.fetch(storage, base, base + 10 * w, w)
    assert cache.windows_read - before == 10


def test_a_long_range_is_read_in_parts_with_the_rows_of_one_query(storage: Storage) -> None:
    """Training and replays read ``CHUNK_WINDOWS`` windows per query (memory grows with the spans
    a query reads); the parts give the rows one query over the whole range gives, calls across a
    part boundary included, from an unaligned start to an unaligned end."""
    from otel_ai.analysis.anomaly import synthetic as syn
    from otel_ai.analysis.anomaly.features import Rows, fetch_rows

    w = 60
    t0 = (datetime.now(UTC) - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    syn.write(storage, t0, 90, syn.SynthConfig(seed=5))
    base = int(t0.timestamp())
    # Calls across the boundaries of the parts read below (7 windows each from window 0).
    cross = []
    for k, cut in enumerate((7, 14, 21)):
        at = base + cut * w
        cross += [
            _span(datetime.fromtimestamp(at - 0.05, UTC), 800 + k, 1, 0, "cross-a", "call", 9, False),
            _span(datetime.fromtimestamp(at + 0.05, UTC), 800 + k, 2, 1, "cross-b", "serve", 5, False),
        ]
    storage.insert("otel_traces", [list(c) for c in zip(*cross, strict=True)], COLUMNS, column_oriented=True)
    start = datetime.fromtimestamp(base + 20.5, UTC)  # inside window 0
    end = datetime.fromtimestamp(base + 30 * w + 12.25, UTC)  # inside window 30

    def table(r: Rows) -> list[tuple]:
        cols = [r.kind, r.win, r.svc, r.op, r.dst, r.n, r.errs, r.self_ns, r.childless, r.nspans, r.ntraces]
        return sorted(zip(*[c.tolist() for c in cols], strict=True))

    queries: list[object] = []
    real_query = storage.query

    def counting(*args: object, **kwargs: object) -> object:
        queries.append(args[1])
        return real_query(*args, **kwargs)  # type: ignore[arg-type]

    storage.query = counting  # type: ignore[method-assign]
    try:
        parts = fetch_rows(storage, start, end, w, chunk_windows=7)
        n_parts = len(queries)
        whole = fetch_rows(storage, start, end, w, chunk_windows=10**6)
    finally:
        storage.query = real_query  # type: ignore[method-assign]
    assert n_parts == 5 and len(queries) == 6  # windows 0-6, 7-13, 14-20, 21-27, 28-30; then one
    assert table(parts) == table(whole) and len(table(whole)) > 100
    assert int(parts.win.min()) == base and int(parts.win.max()) == base + 30 * w
    edges = {(r[1], r[2], r[4]) for r in table(parts) if r[0] == "edge"}
    assert {(base + c * w, "cross-a", "cross-b") for c in (7, 14, 21)} <= edges
    order = np.lexsort((parts.dst, parts.op, parts.svc, parts.win, parts.kind))
    worder = np.lexsort((whole.dst, whole.op, whole.svc, whole.win, whole.kind))
    assert np.allclose(parts.q[order], whole.q[worder], rtol=0.05, equal_nan=True)
