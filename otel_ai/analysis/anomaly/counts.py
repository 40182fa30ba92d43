"""Additive per-window counts for the count tests (``stats.py``), by one SQL query per range.

Unlike quantiles, counts add up over windows, so a quiet entity can be judged over 5 or 15
minutes by summing. Per window the query returns:

- ``svc``: per service, entry spans, errors, and a log-histogram of their durations (4 buckets
  per octave from 1 µs), from which "spans slower than the usual p95" is counted later;
- ``call``: per caller and callee (``peer.service``, else ``server.address``), client calls,
  *logical* calls (one per parent span and callee operation), failed logical calls (every
  attempt failed: a retry that finally succeeded is no failure), ``u`` the failed logical calls
  no server span answered (connection refused, unreachable, timed out before the callee) and
  re-sends: attempts
  with ``http.request.resend_count`` > 0, or repeated sibling calls to the same callee operation
  when one of them failed; ``alias`` is the service whose server spans answered (so an
  uninstrumented peer is told apart from a service known under another name);
- ``lag``: per consumer service and topic, a log-histogram of the queue lag, PRODUCER end →
  CONSUMER start, paired by parent span id or by span link.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from otel_ai.analysis.anomaly.features import _ENTRY, _ERR, MAP_SETTINGS
from otel_ai.storage import Storage

BUCKETS_PER_OCTAVE = 4
N_BUCKETS = 128
_WIN = "toUInt32(toUnixTimestamp(toStartOfInterval(Timestamp, toIntervalSecond({w:UInt32}))))"
_RANGE = "Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)}"


def _bucket(ns: str) -> str:
    return f"toUInt16(least({N_BUCKETS - 1}, greatest(0, floor({BUCKETS_PER_OCTAVE} * log2(greatest({ns}, 1000) / 1000)))))"


COUNTS_SQL = f"""
WITH spans AS (
    SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanName, Duration, Timestamp, SpanKind,
           {_ENTRY} AS entry, {_ERR} AS err, {_WIN} AS win,
           SpanAttributes['peer.service'] AS peer_svc, SpanAttributes['server.address'] AS addr,
           toUInt32OrZero(SpanAttributes['http.request.resend_count']) AS resend,
           SpanAttributes['messaging.destination.name'] AS topic
    FROM {{db:Identifier}}.otel_traces WHERE {_RANGE}
)
SELECT 'svc' AS kind, win, ServiceName AS svc, '' AS dst, '' AS alias, count() AS n, countIf(err) AS errs,
       toUInt64(0) AS a, toUInt64(0) AS b, sumMap([{_bucket("Duration")}], [toUInt64(1)]) AS hist,
       sumMap([{_bucket("greatest(toInt64(Duration) - toInt64(kids.child_ns), 0)")}], [toUInt64(1)]) AS hist2,
       toUInt64(0) AS u
FROM spans LEFT JOIN (
    SELECT TraceId, ParentSpanId AS pid, sum(Duration) AS child_ns FROM spans WHERE ParentSpanId != ''
    GROUP BY TraceId, pid
) AS kids ON spans.TraceId = kids.TraceId AND spans.SpanId = kids.pid
WHERE entry GROUP BY win, svc
UNION ALL
SELECT 'call', min(win), svc, dst, any(alias), sum(k), countIf(e = k), sum(r), count(), ([toUInt16(0)], [toUInt64(0)]),
       ([toUInt16(0)], [toUInt64(0)]), countIf(e = k AND answered = 0)
FROM (
    SELECT min(c.win) AS win, c.ServiceName AS svc, if(c.peer_svc != '', c.peer_svc, c.addr) AS dst,
           anyIf(k.ServiceName, k.ServiceName != c.ServiceName) AS alias, count() AS k, countIf(c.err) AS e,
           greatest(countIf(c.resend > 0), if(countIf(c.err) > 0, count() - 1, 0)) AS r,
           countIf(k.ServiceName != '' AND k.ServiceName != c.ServiceName) AS answered
    FROM (SELECT * FROM spans WHERE SpanKind IN ('Client', 'SPAN_KIND_CLIENT')) AS c
    LEFT JOIN (SELECT TraceId, ParentSpanId, ServiceName FROM spans WHERE ParentSpanId != '') AS k
        ON c.TraceId = k.TraceId AND c.SpanId = k.ParentSpanId
    GROUP BY c.TraceId, c.ParentSpanId, svc, dst, c.SpanName
)
WHERE dst != ''
GROUP BY win, svc, dst
UNION ALL
SELECT 'lag', c.win, c.ServiceName, p.topic, '', count(), toUInt64(0), toUInt64(0), toUInt64(0),
       sumMap([{_bucket("greatest(toInt64(c.ts_ns) - toInt64(p.end_ns), 0)")}], [toUInt64(1)]),
       ([toUInt16(0)], [toUInt64(0)]), toUInt64(0)
FROM (
    SELECT win, ServiceName, TraceId, ParentSpanId AS pid, toUnixTimestamp64Nano(Timestamp) AS ts_ns
    FROM spans WHERE SpanKind IN ('Consumer', 'SPAN_KIND_CONSUMER')
    UNION ALL
    SELECT {_WIN}, ServiceName, lt, ls, toUnixTimestamp64Nano(Timestamp)
    FROM {{db:Identifier}}.otel_traces ARRAY JOIN `Links.TraceId` AS lt, `Links.SpanId` AS ls
    WHERE {_RANGE} AND SpanKind IN ('Consumer', 'SPAN_KIND_CONSUMER') AND ParentSpanId = ''
) AS c
INNER JOIN (
    SELECT TraceId, SpanId, if(topic != '', topic, SpanName) AS topic,
           toUnixTimestamp64Nano(Timestamp) + Duration AS end_ns
    FROM spans WHERE SpanKind IN ('Producer', 'SPAN_KIND_PRODUCER')
) AS p ON c.TraceId = p.TraceId AND c.pid = p.SpanId
GROUP BY c.win, c.ServiceName, p.topic
"""


def bucket_upper_ms(b: int | np.ndarray) -> np.ndarray:
    """Upper edge of histogram bucket ``b`` in milliseconds."""
    return np.asarray(2.0 ** ((np.asarray(b, dtype=float) + 1) / BUCKETS_PER_OCTAVE) / 1000.0)


@dataclass
class CountRows:
    kind: np.ndarray
    win: np.ndarray
    svc: np.ndarray
    dst: np.ndarray
    alias: np.ndarray
    n: np.ndarray
    errs: np.ndarray
    a: np.ndarray
    b: np.ndarray
    hist: list[tuple[np.ndarray, np.ndarray]]
    hist2: list[tuple[np.ndarray, np.ndarray]]  # svc: self-time (duration minus direct children)
    u: np.ndarray  # call: failed logical calls no server span answered (connection refused, unreachable)

    @staticmethod
    def from_tuples(rows: list[tuple]) -> CountRows:
        cols = list(zip(*rows, strict=True)) if rows else [()] * 12
        return CountRows(
            kind=np.array(cols[0], dtype=object), win=np.array(cols[1], dtype=np.int64),
            svc=np.array(cols[2], dtype=object), dst=np.array(cols[3], dtype=object),
            alias=np.array(cols[4], dtype=object), n=np.array(cols[5], dtype=float),
            errs=np.array(cols[6], dtype=float), a=np.array(cols[7], dtype=float), b=np.array(cols[8], dtype=float),
            hist=[(np.asarray(h[0], dtype=np.int64), np.asarray(h[1], dtype=float)) for h in cols[9]],
            hist2=[(np.asarray(h[0], dtype=np.int64), np.asarray(h[1], dtype=float)) for h in cols[10]],
            u=np.array(cols[11], dtype=float),
        )  # fmt: skip


def query_counts(storage: Storage, start: datetime, end: datetime, window_s: int) -> list[tuple]:
    params = {"db": storage.database, "w": int(window_s), "start": start.astimezone(UTC).replace(tzinfo=None),
              "end": end.astimezone(UTC).replace(tzinfo=None)}  # fmt: skip
    return list(storage.query(COUNTS_SQL, params, settings=MAP_SETTINGS))


def fetch_counts(
    storage: Storage, start: datetime, end: datetime, window_s: int, *, chunk_windows: int = 60
) -> CountRows:
    """Count rows of every window of ``[start, end)``, read ``chunk_windows`` windows per query,
    each part with a window of context on either side (calls that cross a part boundary pair)."""
    w = int(window_s)
    t0, t1 = start.timestamp(), end.timestamp()
    step = max(1, chunk_windows) * w
    cuts = [t0, *range(int(t0) // w * w + step, math.ceil(t1), step), t1]
    out: list[tuple] = []
    for lo, hi in itertools.pairwise(cuts):
        rows = query_counts(storage, _at(max(t0, lo - w)), _at(min(t1, hi + w)), w)
        keep_lo = int(lo) // w * w
        out.extend(r for r in rows if keep_lo <= int(r[1]) < hi)
    return CountRows.from_tuples(out)


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
