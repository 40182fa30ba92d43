"""The robust-z baseline of ``bench/anomaly_eval.py --source random``, and the faults' observability.

The baseline is what a competent user would run without our detector: per service, over
5-minute windows,

- request count against a time-of-day profile (24 hourly slots of training medians, linearly
  interpolated), robust z of the residual (scale 1.4826 x MAD of the residuals, at least 1
  request), two-sided;
- error ratio, robust z (median, 1.4826 x MAD, scale at least 0.05), upper side only;
- log p95 latency, robust z (scale at least 0.05, i.e. 5 %), upper side only;

p95 and error ratio are scored in every window with at least ``MIN_SPANS`` entry spans (one, so
no quiet service is masked). **Each (service, metric) has its own threshold**: ``margin`` x its
maximum |z| over the last training day (at least ``FLOOR``), so a noisy quiet service calibrates
itself instead of blinding the others. A window alarms when any (service, metric) exceeds its
threshold; consecutive alarming windows are one finding. An alarm whose exceeding figures are
all request counts going *up* is a traffic note (``info``, like the detector's flash crowd
rule). Root causes: services by their largest z / threshold in the first alarming window.

The profile, medians and MADs come from all training windows and the thresholds from the last
training day (in-sample for that day: it makes the thresholds, if anything, lower).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from otel_ai.analysis.anomaly.features import _ENTRY, _ERR
from otel_ai.storage import Storage

W = 300
MIN_SPANS = 1
FLOOR = 3.0
MARGIN = 1.5  # chosen on the development seeds (101-103) for <= 1 false alarm/day, like the detector
SLOTS = 24

SQL = f"""
SELECT ServiceName, toUInt32(toUnixTimestamp(toStartOfInterval(Timestamp, toIntervalSecond({{w:UInt32}})))) AS win,
       count(), countIf({_ERR}), quantileTDigest(0.95)(Duration) / 1e6
FROM {{db:Identifier}}.otel_traces
WHERE Timestamp >= {{start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}} AND {_ENTRY}
GROUP BY ServiceName, win
"""


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _grid(st: Storage, t0: datetime, end: datetime) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    rows = st.query(SQL, {"db": st.database, "w": W, "start": _naive(t0), "end": _naive(end)})
    wins = np.arange(int(t0.timestamp()) // W * W, int(end.timestamp()), W)
    svcs = sorted({str(r[0]) for r in rows})
    n = np.zeros((len(wins), len(svcs)))
    e = np.zeros_like(n)
    p95 = np.full_like(n, np.nan)
    col = {s: j for j, s in enumerate(svcs)}
    for s, w, k, errs, q in rows:
        i = int((int(w) - wins[0]) // W)
        if 0 <= i < len(wins):
            n[i, col[str(s)]], e[i, col[str(s)]], p95[i, col[str(s)]] = k, errs, q
    return wins, svcs, {"n": n, "e": e, "p95": p95}


def _profile(wins: np.ndarray, n: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Expected count of every window from the training windows' hourly medians (interpolated)."""
    pos = ((wins + W / 2) % 86400) / 86400.0 * SLOTS - 0.5
    slot = np.round(pos).astype(int) % SLOTS
    prof = np.zeros((SLOTS, n.shape[1]))
    for j in range(SLOTS):
        m = train & (slot == j)
        prof[j] = np.median(n[m], axis=0) if m.any() else np.median(n[train], axis=0)
    lo = np.floor(pos).astype(int)
    frac = (pos - lo)[:, None]
    return (1 - frac) * prof[lo % SLOTS] + frac * prof[(lo + 1) % SLOTS]


def _robust(x: np.ndarray, train: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    ref = x[train]
    with np.errstate(all="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        med = np.nan_to_num(np.nanmedian(ref, axis=0))
        mad = np.nan_to_num(1.4826 * np.nanmedian(np.abs(ref - med), axis=0))
    return med, np.maximum(mad, floor)


def zscores(st: Storage, t0: datetime, test_start: datetime, end: datetime) -> dict[str, Any]:
    """Signed robust z per window, service and metric (rate, err, p95), with the training masks."""
    wins, svcs, g = _grid(st, t0, end)
    train = wins < int(test_start.timestamp())
    cal = train & (wins >= int((test_start - timedelta(days=1)).timestamp()))
    n, e, p95 = g["n"], g["e"], g["p95"]
    exp = _profile(wins, n, train)
    resid = n - exp
    _, s_rate = _robust(resid, train, 1.0)
    z_rate = resid / s_rate
    ok = n >= MIN_SPANS
    with np.errstate(all="ignore"):
        err = np.where(ok, e / np.maximum(n, 1), np.nan)
        lat = np.where(ok, np.log(np.maximum(p95, 1e-6)), np.nan)
    m_err, s_err = _robust(err, train, 0.05)
    m_lat, s_lat = _robust(lat, train, 0.05)
    z = {
        "rate": z_rate,
        "err": np.nan_to_num(np.maximum((err - m_err) / s_err, 0.0)),
        "p95": np.nan_to_num(np.maximum((lat - m_lat) / s_lat, 0.0)),
    }
    return {"wins": wins, "services": svcs, "z": z, "train": train, "cal": cal}


def robust_z(st: Storage, t0: datetime, test_start: datetime, end: datetime,
             margin: float = MARGIN) -> tuple[list[dict], float]:  # fmt: skip
    """Findings of the calibrated per-entity robust z over the test range (API-like dicts)."""
    t = time.perf_counter()
    d = zscores(st, t0, test_start, end)
    wins, svcs, Z, cal = d["wins"], d["services"], d["z"], d["cal"]
    test = ~d["train"]
    metrics = list(Z)
    thr = {m: np.maximum(FLOOR, margin * np.abs(Z[m][cal]).max(axis=0)) for m in metrics}
    ratio = {m: np.abs(Z[m]) / thr[m] for m in metrics}  # > 1 = exceeds its own threshold
    over = np.zeros(len(wins), bool)
    for m in metrics:
        over |= (ratio[m] > 1).any(axis=1)
    found: list[dict] = []
    idx = np.flatnonzero(test)
    i = 0
    while i < len(idx):
        k = idx[i]
        if not over[k]:
            i += 1
            continue
        by_svc = {s: max(float(ratio[m][k, j]) for m in metrics) for j, s in enumerate(svcs)}
        surge = all(
            Z[m][k, j] > 0 and m == "rate" for m in metrics for j in range(len(svcs)) if ratio[m][k, j] > 1
        )
        at = datetime.fromtimestamp(int(wins[k]), UTC)
        ranked = sorted(by_svc, key=lambda s: -by_svc[s])
        found.append({
            "opened_at": _iso(at), "severity": "info" if surge else "warning",
            "evidence": {"alerted_at": _iso(at + timedelta(seconds=W)), "abnormal": {}},
            "root_causes": [] if surge else [{"service": s, "score": by_svc[s]} for s in ranked[:10]],
        })  # fmt: skip
        while i < len(idx) and over[idx[i]]:
            i += 1
    return found, time.perf_counter() - t


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


OBS_SQL = f"""
SELECT
  countIf(ServiceName = {{svc:String}} AND {_ENTRY}),
  countIf(ServiceName = {{svc:String}} AND {_ENTRY} AND {_ERR}),
  countIf(SpanKind IN ('Client', 'SPAN_KIND_CLIENT') AND SpanAttributes['peer.service'] = {{svc:String}} AND {_ERR}),
  countIf(ServiceName = {{svc:String}} AND SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
          AND SpanAttributes['peer.service'] = {{callee:String}}
          AND toUInt32OrZero(SpanAttributes['http.request.resend_count']) > 0)
FROM {{db:Identifier}}.otel_traces
WHERE Timestamp >= {{start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}}
"""


def affected(st: Storage, g: dict[str, Any]) -> int:
    """Spans the fault actually changed during its window, from the stored spans: the target's
    requests (latency, lag, traffic), its failed requests (errors), refused calls to it
    (unreachable), re-sent calls (retry). 0 = no detector could have seen it."""
    a = datetime.fromtimestamp(g["start"], UTC)
    b = datetime.fromtimestamp(g["end"], UTC)
    n, errs, refused, resent = st.query(OBS_SQL, {"db": st.database, "svc": g["service"],
                                                  "callee": g.get("callee", ""), "start": _naive(a),
                                                  "end": _naive(b)})[0]  # fmt: skip
    return int({"errors": errs, "unreachable": refused, "retry": resent}.get(g["type"], n))
