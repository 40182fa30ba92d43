"""Count tests: statistics that stay valid at small counts, over 1, 5 and 15-minute windows.

The autoencoder needs ``min_count`` spans per window before it looks at an entity's latency or
errors, so a service with 4 requests/min was never scored. These tests work on additive counts
(``counts.py``) and judge them with exact-tail tests instead of z-scores:

- ``slow``: spans slower than the entity's usual p95 (a rank test on the spans actually seen:
  under normal traffic ~5% of spans are above it, whatever the distribution), one-sided binomial;
  ``self_slow`` the same on self-time (duration minus direct children): "slow itself";
- ``errors``: failed entry spans, one-sided binomial against the entity's error share;
- ``cfail``: unanswered failed client calls from a caller to a callee or an uninstrumented peer
  (every attempt failed and no server span answered: connection refused, unreachable), one-sided
  binomial against a prior pooled over edges of the same kind (peers apart from services); the
  callee owns it. Errors a callee answered are its own ``errors``: mixing them into the edge's
  share would hide two refused calls at a quiet service behind its routine errors;
- ``retries``: re-sent calls per logical call (``http.request.resend_count``, or repeated sibling
  calls to the same callee operation after a failure), negative-binomial upper tail;
- ``lag``: queue messages whose PRODUCER end → CONSUMER start lag is above its usual p95, binomial;
- ``volume``: requests against the entity's time-of-day profile, negative-binomial two-sided
  (drops page; surges are traffic notes);
- ``slow_far`` / ``self_far`` / ``lag_far`` (quietest entities only): spans beyond twice the
  training maximum, against an out-of-sample rate pooled over all histograms (2 events suffice).

Overdispersion learned on the training range widens the tests (a beta-binomial design effect for
shares, the negative binomial's φ for counts), so a busy entity is judged on *relative* change
while a quiet one gets the exact small-count tail. An effect-size floor (``min_ratio`` for
shares, ``min_drop`` for traffic) keeps tiny-but-significant shifts (a +10% deploy step on a busy
service) from paging.

**Multi-resolution rule.** Windows of W ∈ {1, 5, 15} minutes (trailing sums). An entity with v
requests per minute (training median) is scored on the shortest W with v·W ≥ ``count_min`` and
on every shorter W (exact tests stay valid at small counts, they only need bigger effects, so a
big fault is still seen early); the longest W only serves entities too quiet for the shorter
ones. With the defaults (``count_min`` 20): v ≥ 20/min → 1 min; 4 ≤ v < 20 → 1 and 5 min;
v < 4 → 1, 5 and 15 min.

Every test's score is ``-log10 p`` over its alarm level: the Bonferroni level for
``false_alarm_rate`` over all tests, or 1.2 x the test's own maximum over the clean training
windows when that is higher (a dispersion the model did not capture, e.g. latency that follows
load), so 1.0 means "alarm", as for the autoencoder.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from otel_ai.analysis.anomaly.counts import BUCKETS_PER_OCTAVE, N_BUCKETS, CountRows, bucket_upper_ms
from otel_ai.analysis.anomaly.features import Feature

BINOMIAL = ("slow", "self_slow", "errors", "cfail", "lag", "slow_far", "self_far", "lag_far")
# Far tests of the quietest entities: spans beyond twice the entity's training maximum
# (``FAR_BUCKETS`` above its top histogram bucket), 2 events suffice (see ``_far_prior``).
FAR = {"slow_far": "slow", "self_far": "self_slow", "lag_far": "lag"}
FAR_OCTAVES = 1
# The histograms know the maximum only to its bucket, so "twice the maximum" lies between twice
# that bucket's lower edge and twice its upper edge (x1.19 apart): the line is drawn at the lower
# end. (At the upper end a x10 slowdown of a 0.09 req/min service, 25.4 and 41.8 ms against an
# 11.9 ms maximum, counted one span beyond 27.6 ms, and one never pages.) The out-of-sample
# exceedance rate is counted at the same line, so the test stays calibrated.
FAR_BUCKETS = FAR_OCTAVES * BUCKETS_PER_OCTAVE - 1
FAR_PRIOR = 100.0  # spans of prior weight on the pooled far-exceedance rate
CV_BLOCK = 60  # windows per block of the two-fold split that estimates that rate
SLOW_SHARE = 0.05  # the "usual p95": share of training spans above the threshold bucket
QUIET_SHARE = 0.002  # entities scored on the longest window only: their usual p99.8 (3 of 3 above: p ~ 1e-8)
RETRY_PRIOR = 100.0  # logical calls of prior weight on the re-send rate pooled over all edges
ERROR_PRIOR = 100.0  # entry spans of prior weight on the error share pooled over all services
CFAIL_PRIOR = 100.0  # logical calls of prior weight on the failed-call share pooled over like edges
CALIBRATION_MARGIN = 1.2
FRESH_S = 300  # a long window alarms only while its newest 5 minutes are unusual on their own:
FRESH_P = 0.01  # their events' Poisson tail against the usual count there


@dataclass
class TestSpec:
    """One test: its feature (entity + metric), resolutions (in windows) and fitted parameters."""

    feature: Feature
    res: list[int]
    p0: float = 0.0  # baseline share (binomial) or re-sends per logical call (retries)
    disp: dict[int, float] | None = None  # τ² (shares) or φ (counts) per resolution
    level: dict[int, float] | None = None
    bucket: int = -1  # slow / lag: threshold bucket (above it = slow)
    profile: list[float] | None = None  # volume: mean count per window, per time-of-day slot


def _grid(rows: CountRows, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    wi = np.searchsorted(windows, rows.win)
    valid = (wi < len(windows)) & (len(windows) > 0)
    valid &= np.where(valid, windows[np.minimum(wi, len(windows) - 1)] == rows.win, False)
    return np.where(valid, wi, 0), valid


def _series(rows: CountRows, windows: np.ndarray, kind: str) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Per entity of ``kind``: n, errs, a, b per window, and the total duration histogram."""
    wi, valid = _grid(rows, windows)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    nw = len(windows)
    for i in np.flatnonzero((rows.kind == kind) & valid):
        key = (str(rows.svc[i]), str(rows.dst[i]))
        e = out.get(key)
        if e is None:
            e = out[key] = {"n": np.zeros(nw), "errs": np.zeros(nw), "a": np.zeros(nw), "b": np.zeros(nw), "u": np.zeros(nw),
                            "hist": np.zeros(N_BUCKETS), "rows": [], "hist2": np.zeros(N_BUCKETS), "rows2": [],
                            "alias": {}}  # fmt: skip
        w = wi[i]
        e["n"][w] += rows.n[i]
        e["errs"][w] += rows.errs[i]
        e["a"][w] += rows.a[i]
        e["b"][w] += rows.b[i]
        e["u"][w] += rows.u[i]
        keys, cnt = rows.hist[i]
        if len(keys):
            np.add.at(e["hist"], np.clip(keys, 0, N_BUCKETS - 1), cnt)
            e["rows"].append((w, keys, cnt))
        keys, cnt = rows.hist2[i]
        if kind == "svc" and len(keys):
            np.add.at(e["hist2"], np.clip(keys, 0, N_BUCKETS - 1), cnt)
            e["rows2"].append((w, keys, cnt))
        if rows.alias[i]:
            e["alias"][str(rows.alias[i])] = e["alias"].get(str(rows.alias[i]), 0) + rows.n[i]
    return out


def _above(entry: dict[str, Any], bucket: int, nw: int, which: str = "rows") -> np.ndarray:
    """Per window, spans in buckets above ``bucket``."""
    k = np.zeros(nw)
    for w, keys, cnt in entry[which]:
        k[w] += float(cnt[keys > bucket].sum())
    return k


def _trail(x: np.ndarray, k: int) -> np.ndarray:
    """Trailing sums over ``k`` windows; NaN until ``k`` windows exist."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = np.full(len(x), np.nan)
    if len(x) >= k:
        out[k - 1 :] = c[k:] - c[:-k]
    return out


def _slot_pos(windows: np.ndarray, window_s: int, slots: int) -> np.ndarray:
    return ((windows + window_s / 2) % 86400) / 86400.0 * slots - 0.5


def _profile_at(profile: np.ndarray, pos: np.ndarray) -> np.ndarray:
    k = len(profile)
    lo = np.floor(pos)
    w = pos - lo
    i0 = lo.astype(int) % k
    return (1 - w) * profile[i0] + w * profile[(i0 + 1) % k]


def bonferroni_level(false_alarm_rate: float, n_tests: int) -> float:
    """The alarm level of one (test, resolution) pair, in ``-log10 p``: the window's budget split
    evenly over all of them."""
    return -math.log10(false_alarm_rate / max(1, n_tests))


class CountTests:
    """Fit on a training range's count rows; score any range's windows (see the module docstring)."""

    def __init__(self, *, window_s: int = 60, resolutions_s: tuple[int, ...] = (60, 300, 900, 1800), min_count: int = 20,
                 false_alarm_rate: float = 1e-3, slots: int = 24, min_ratio: float = 3.0, min_share: float = 0.1,
                 min_drop: float = 0.3, min_events: int = 3) -> None:  # fmt: skip
        self.window_s = window_s
        self.resolutions_s = resolutions_s
        self.min_count = min_count
        self.false_alarm_rate = false_alarm_rate
        self.slots = slots
        self.min_ratio = min_ratio
        self.min_share = min_share
        self.min_drop = min_drop
        self.min_events = min_events
        self.tests: list[TestSpec] = []
        self.aliases: dict[str, str] = {}
        self.services: list[str] = []

    @property
    def res_windows(self) -> list[int]:
        return sorted({max(1, round(r / self.window_s)) for r in self.resolutions_s})

    @property
    def history_windows(self) -> int:
        """Windows of history a scored range needs before its first window (the longest resolution)."""
        return max(self.res_windows) - 1

    def _slow_share(self, n_train: np.ndarray) -> float:
        """The share above the "slow" threshold: the usual p95, or the usual p99.8 for an entity
        too quiet for any but the longest window (a handful of spans there: 3 of 3 above the
        p99.8 is p ~ 1e-8, above the p95 only 1e-4: a rank test needs a rare threshold to see a
        large slowdown in a handful of spans)."""
        ks = self.res_windows
        quiet = float(n_train.mean()) * ks[-2] < self.min_count if len(ks) > 1 else False
        return QUIET_SHARE if quiet else SLOW_SHARE

    def _volume_res(self, res: list[int]) -> list[int]:
        short = {k for k in self.res_windows if k * self.window_s <= 300}
        return sorted(short | {k for k in res if k * self.window_s <= 900}) or res[:1]

    def _resolutions(self, per_window: float) -> list[int]:
        ks = self.res_windows
        enough = [k for k in ks if per_window * k >= self.min_count]
        return ks[: ks.index(enough[0]) + 1] if enough else ks

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, rows: CountRows, windows: np.ndarray, keep: np.ndarray | None = None) -> CountTests:
        nw = len(windows)
        keep = np.ones(nw, bool) if keep is None else keep
        svc, call, lag = (
            _series(rows, windows, "svc"),
            _series(rows, windows, "call"),
            _series(rows, windows, "lag"),
        )
        self.services = sorted(s for s, _ in svc)
        self.aliases = {}
        svc_names = {s for s, _ in svc}
        for (_c, d), e in call.items():
            if e["alias"]:
                self.aliases[d] = max(e["alias"], key=lambda s: e["alias"][s])
        tests: list[TestSpec] = []
        for (s, _), e in sorted(svc.items()):
            v = float(np.median(e["n"][keep])) if keep.any() else 0.0
            if e["n"][keep].sum() < 10:
                continue
            res = self._resolutions(v)
            share = self._slow_share(e["n"][keep])
            b = _threshold_bucket(e["hist"], share)
            tests.append(TestSpec(Feature("service", s, "slow"), res, bucket=b))
            tests.append(
                TestSpec(Feature("service", s, "self_slow"), res, bucket=_threshold_bucket(e["hist2"], share))
            )
            if share == QUIET_SHARE:
                tests.append(TestSpec(Feature("service", s, "slow_far"), res, bucket=_far_bucket(e["hist"])))
                tests.append(TestSpec(Feature("service", s, "self_far"), res, bucket=_far_bucket(e["hist2"])))
            tests.append(TestSpec(Feature("service", s, "errors"), res))
            # Traffic is judged on 5 minutes whatever the volume (a drop is a relative change, and
            # 5-minute sums see a sustained -50 % through a busy entry's minute-to-minute noise),
            # never beyond 15 (a long sum outlasts a flash crowd and merges it with what follows).
            tests.append(TestSpec(Feature("service", s, "volume"), self._volume_res(res)))
        for (c, d), e in sorted(call.items()):
            if e["n"][keep].sum() < 10:
                continue
            res = self._resolutions(float(np.median(e["b"][keep])))
            tests.append(TestSpec(Feature("edge", c, "cfail", target=d), res))
            tests.append(TestSpec(Feature("edge", c, "retries", target=d), res))
        for (c, topic), e in sorted(lag.items()):
            if e["n"][keep].sum() < 10:
                continue
            res = self._resolutions(float(np.median(e["n"][keep])))
            share = self._slow_share(e["n"][keep])
            b = _threshold_bucket(e["hist"], share)
            tests.append(TestSpec(Feature("queue", c, "lag", operation=topic), res, bucket=b))
            if share == QUIET_SHARE:
                far = TestSpec(
                    Feature("queue", c, "lag_far", operation=topic), res, bucket=_far_bucket(e["hist"])
                )
                tests.append(far)
        self.tests = tests
        n_tests = max(1, sum(len(t.res) for t in tests))
        self.p_alarm_ = self.false_alarm_rate / n_tests
        base = bonferroni_level(self.false_alarm_rate, n_tests)
        series = {"svc": svc, "call": call, "lag": lag}
        # Re-sends are rare everywhere: a quiet edge's own history (a few hundred calls without
        # one) cannot tell "never" from "1 in 300", so its rate is shrunk towards the rate pooled
        # over all edges (empirical Bayes, ``RETRY_PRIOR`` calls of weight).
        ra = sum(float(e["a"][keep].sum()) for e in call.values())
        rb = sum(float(e["b"][keep].sum()) for e in call.values())
        pooled_retry = (ra + 0.5) / (rb + 1.0)
        # Errors likewise: a quiet service's few hundred error-free training spans would give it
        # the Jeffreys share 0.5 / n (1 in 400), so its first two errors could never page; the
        # share pooled over every service's entry spans is the better prior for "almost never".
        ea = sum(float(e["errs"][keep].sum()) for e in svc.values())
        eb = sum(float(e["n"][keep].sum()) for e in svc.values())
        pooled_err = (ea + 0.5) / (eb + 1.0)
        # Unanswered failed calls likewise, pooled over edges of the same kind: calls to an
        # uninstrumented peer (databases, caches, external APIs, whose connections almost never
        # fail) apart from calls to instrumented services (a callee that is up answers, so
        # refused calls there are rarer still; its answered errors are its own ``errors`` test).
        # A quiet edge that never failed then pages on 2 refused calls, an edge with routine
        # failures keeps its own, higher share.
        pooled_cfail = {}
        for peer in (True, False):
            like = [
                e for (_c, d), e in call.items() if (d not in self.aliases and d not in svc_names) == peer
            ]
            fa_ = sum(float(e["u"][keep].sum()) for e in like)
            fb_ = sum(float(e["b"][keep].sum()) for e in like)
            pooled_cfail[peer] = (fa_ + 0.5) / (fb_ + 1.0)
        far_rate = _far_prior(series, keep, nw)
        for t in tests:
            k_obs, n_obs = self._observed(t, series, nw)
            t.disp, t.level = {}, {}
            if t.feature.metric == "volume":
                pos = _slot_pos(windows, self.window_s, self.slots)
                slot = np.round(pos).astype(int) % self.slots
                prof = np.zeros(self.slots)
                for j in range(self.slots):
                    m = keep & (slot == j)
                    prof[j] = float(n_obs[m].mean()) if m.any() else float(n_obs[keep].mean())
                t.profile = prof.tolist()
            elif t.feature.metric == "retries":
                t.p0 = float(
                    (k_obs[keep].sum() + RETRY_PRIOR * pooled_retry) / (n_obs[keep].sum() + RETRY_PRIOR)
                )
            elif t.feature.metric == "errors":
                t.p0 = float(
                    (k_obs[keep].sum() + ERROR_PRIOR * pooled_err) / (n_obs[keep].sum() + ERROR_PRIOR)
                )
            elif t.feature.metric == "cfail":
                peer = t.feature.target not in self.aliases and t.feature.target not in svc_names
                t.p0 = float(
                    (k_obs[keep].sum() + CFAIL_PRIOR * pooled_cfail[peer]) / (n_obs[keep].sum() + CFAIL_PRIOR)
                )
            elif t.feature.metric in FAR:
                k_cv, n_cv = far_rate["own"].get(t.feature.name, (0.0, 0.0))
                t.p0 = float((k_cv + FAR_PRIOR * far_rate["pooled"]) / (n_cv + FAR_PRIOR))
            else:
                t.p0 = float((k_obs[keep].sum() + 0.5) / (n_obs[keep].sum() + 1.0))
            for r in t.res:
                K, N, E = self._sums(t, k_obs, n_obs, windows, r)
                m = keep & ~np.isnan(K)
                if t.feature.metric in ("volume", "retries"):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        resid = np.square(K[m] - E[m]) - E[m]
                        lam2 = np.square(E[m])
                        phi = float(_trimmed_sum(resid) / max(lam2.sum(), 1e-9)) if m.any() else 0.0
                    t.disp[r] = max(0.0, phi)
                else:
                    w = N[m] > 0
                    pi = K[m][w] / N[m][w]
                    tau = (np.sum(N[m][w] * np.square(pi - t.p0)) - w.sum() * t.p0 * (1 - t.p0)) / max(
                        N[m][w].sum(), 1
                    )
                    t.disp[r] = max(0.0, float(tau))
                sv = self._surprise(t, r, K, N, E) * _fresh(t, k_obs, n_obs, r, self.window_s)
                # The exact test's Bonferroni level, unless the entity's own clean windows beat
                # it (a dispersion the model did not capture): then just above their maximum.
                top = float(sv[m].max()) if m.any() else 0.0
                t.level[r] = max(base, CALIBRATION_MARGIN * top)
        self.levels_ = {"bonferroni": base}
        return self

    def _observed(self, t: TestSpec, series: dict[str, Any], nw: int) -> tuple[np.ndarray, np.ndarray]:
        f = t.feature
        metric = FAR.get(f.metric, f.metric)  # a far test counts like its own kind, above its bucket
        zero = np.zeros(nw)
        if f.kind == "service":
            e = series["svc"].get((f.service, ""))
            if e is None:
                return zero, zero
            if metric == "slow":
                return _above(e, t.bucket, nw), e["n"]
            if metric == "self_slow":
                return _above(e, t.bucket, nw, "rows2"), e["n"]
            if metric == "errors":
                return e["errs"], e["n"]
            return e["n"], e["n"]
        if f.kind == "queue":
            e = series["lag"].get((f.service, f.operation))
            return (_above(e, t.bucket, nw), e["n"]) if e is not None else (zero, zero)
        e = series["call"].get((f.service, f.target))
        if e is None:
            return zero, zero
        if f.metric == "cfail":
            return e["u"], e["b"]  # unanswered failed logical calls of all logical calls
        return e["a"], e["b"]

    def _sums(self, t: TestSpec, k_obs: np.ndarray, n_obs: np.ndarray, windows: np.ndarray,
              r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """Trailing sums over ``r`` windows: observed K, trials N, expected E (counts tests)."""
        K, N = _trail(k_obs, r), _trail(n_obs, r)
        if t.feature.metric == "volume":
            prof = np.asarray(t.profile or [0.0], dtype=float)
            lam = _profile_at(prof, _slot_pos(windows, self.window_s, len(prof)))
            return K, N, _trail(lam, r)
        if t.feature.metric == "retries":
            return K, N, N * t.p0
        return K, N, N * t.p0

    def _surprise(self, t: TestSpec, r: int, K: np.ndarray, N: np.ndarray, E: np.ndarray) -> np.ndarray:
        """``-log10 p`` of each window (0 where the effect-size floor is not met)."""
        metric = t.feature.metric
        disp = (t.disp or {}).get(r, 0.0)
        Kf, Nf, Ef = np.nan_to_num(K), np.nan_to_num(N), np.nan_to_num(E)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if metric in BINOMIAL:
                p0 = min(max(t.p0, 1e-6), 0.999)
                deff = 1 + Nf * disp / (p0 * (1 - p0))
                ke, ne = Kf / deff, Nf / deff
                p = np.where(
                    ke > 0, special.betainc(np.maximum(ke, 1e-9), np.maximum(ne - ke + 1, 1e-9), p0), 1.0
                )
                share = np.where(Nf > 0, Kf / np.maximum(Nf, 1), 0.0)
                floor_share = self.min_share if metric in ("slow", "self_slow", "lag", *FAR) else 0.02
                # Two events suffice where the (pooled) prior makes them very unlikely (errors,
                # failed calls, spans far beyond the training maximum): the exact tail, not a
                # count floor, keeps an entity with routine ones from paging.
                two = metric in ("errors", "cfail", *FAR)
                floor_k = min(self.min_events, 2) if two else self.min_events
                ok = (share >= self.min_ratio * p0) & (share >= p0 + floor_share) & (Kf >= floor_k)
            elif metric == "retries":
                lam = np.maximum(Ef, 1e-3)
                p = _nb_sf(Kf, lam, disp)
                # Two re-sends suffice (one call sent three times): the prior, not a count floor,
                # keeps an edge with routine retries from paging on them.
                ok = (Kf >= 2) & (Kf >= 2 * lam) & (Kf / np.maximum(Nf, 1) >= t.p0 + 0.3)
            else:  # volume, two-sided: drops (paging) and surges (notes)
                lam = np.maximum(Ef, 1e-3)
                lo = _nb_cdf(Kf, lam, disp)
                hi = _nb_sf(Kf, lam, disp)
                drop = (Kf <= (1 - self.min_drop) * lam) & (lam >= 5)
                surge = (Kf >= 2 * lam) & (Kf - lam >= 5)
                p = np.where(drop, lo, np.where(surge, hi, 1.0))
                ok = drop | surge
            s = -np.log10(np.clip(p, 1e-300, 1.0))
        s = np.where(ok & ~np.isnan(K), s, 0.0)
        return np.asarray(s)

    # -- scoring --------------------------------------------------------------------------------
    def score(self, rows: CountRows, windows: np.ndarray, first: int = 0) -> StatScores:
        """Scores of ``windows[first:]`` (the windows before ``first`` are history for the sums)."""
        nw = len(windows)
        series = {"svc": _series(rows, windows, "svc"), "call": _series(rows, windows, "call"),
                  "lag": _series(rows, windows, "lag")}  # fmt: skip
        cols = len(self.tests)
        F, raw, exp = np.zeros((nw, cols)), np.full((nw, cols), np.nan), np.full((nw, cols), np.nan)
        excess = np.zeros((nw, cols))  # -log10 p beyond the alarm level, in decades (best resolution)
        # the same two over the windows of at most FRESH_S only (what a recovered entity is judged on)
        short, short_excess = np.zeros((nw, cols)), np.zeros((nw, cols))
        for j, t in enumerate(self.tests):
            k_obs, n_obs = self._observed(t, series, nw)
            for r in t.res:
                K, N, E = self._sums(t, k_obs, n_obs, windows, r)
                sv = self._surprise(t, r, K, N, E) * _fresh(t, k_obs, n_obs, r, self.window_s)
                s = sv / (t.level or {}).get(r, 1.0)
                beyond = np.where(sv > 0, sv - (t.level or {}).get(r, 1.0), 0.0)
                excess[:, j] = np.maximum(excess[:, j], beyond)
                value, base = self._values(t, K, N, E, r)
                better = s > F[:, j]
                F[:, j] = np.where(better, s, F[:, j])
                if r * self.window_s <= FRESH_S:
                    short[:, j] = np.maximum(short[:, j], s)
                    short_excess[:, j] = np.maximum(short_excess[:, j], beyond)
                # the value shown is that of the resolution that scored highest (or the shortest)
                take = better | np.isnan(raw[:, j])
                raw[:, j] = np.where(take, value, raw[:, j])
                exp[:, j] = np.where(take, base, exp[:, j])
        feats = [self._owned(t.feature) for t in self.tests]
        return StatScores(feats, F[first:], raw[first:], exp[first:], excess[first:], short[first:],
                          short_excess[first:])  # fmt: skip

    def _values(self, t: TestSpec, K: np.ndarray, N: np.ndarray, E: np.ndarray,
                r: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        with np.errstate(all="ignore"):
            if t.feature.metric == "volume":
                per_min = r * self.window_s / 60.0
                return K / per_min, E / per_min
            if t.feature.metric == "retries":
                return np.where(N > 0, K / N, np.nan), np.full(len(K), t.p0)
            return np.where(N > 0, K / N, np.nan), np.full(len(K), t.p0)

    def _owned(self, f: Feature) -> Feature:
        """Client-call failures belong to the callee: its service name when one answers it."""
        if f.metric == "cfail":
            return Feature(f.kind, f.service, f.metric, target=self.aliases.get(f.target, f.target))
        return f

    def peer_edges(self) -> list[tuple[str, str]]:
        """Caller → callee pairs whose callee has no spans of its own (uninstrumented peers)."""
        known = set(self.services)
        out = set()
        for t in self.tests:
            if t.feature.metric == "cfail":
                dst = self.aliases.get(t.feature.target, t.feature.target)
                if dst not in known:
                    out.add((t.feature.service, dst))
        return sorted(out)

    # -- persistence ----------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({
            "params": {k: getattr(self, k) for k in ("window_s", "resolutions_s", "min_count", "false_alarm_rate",
                                                     "slots", "min_ratio", "min_share", "min_drop", "min_events")},
            "aliases": self.aliases, "services": self.services, "levels": self.levels_, "p_alarm": self.p_alarm_,
            "tests": [{"feature": t.feature.name, "res": t.res, "p0": t.p0, "bucket": t.bucket, "profile": t.profile,
                       "disp": {str(k): v for k, v in (t.disp or {}).items()},
                       "level": {str(k): v for k, v in (t.level or {}).items()}} for t in self.tests],
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> CountTests:
        d = json.loads(text)
        p = d["params"]
        p["resolutions_s"] = tuple(p["resolutions_s"])
        ct = cls(**p)
        ct.aliases, ct.services, ct.levels_, ct.p_alarm_ = (
            d["aliases"],
            d["services"],
            d["levels"],
            d["p_alarm"],
        )
        ct.tests = [TestSpec(Feature.parse(t["feature"]), list(t["res"]), float(t["p0"]),
                             {int(k): float(v) for k, v in t["disp"].items()},
                             {int(k): float(v) for k, v in t["level"].items()}, int(t["bucket"]), t["profile"])
                    for t in d["tests"]]  # fmt: skip
        return ct


@dataclass
class StatScores:
    features: list[Feature]
    F: np.ndarray  # windows x tests, 1.0 = alarm level
    raw: np.ndarray  # the observed share / rate / ratio
    expected: np.ndarray  # its baseline
    excess: np.ndarray | None = None  # -log10 p beyond the alarm level (decades); > 0 = alarm
    short: np.ndarray | None = None  # F over the windows of at most ``FRESH_S`` (no 15/30-min sums)
    short_excess: np.ndarray | None = None  # ``excess`` over those windows


def _fresh(t: TestSpec, k_obs: np.ndarray, n_obs: np.ndarray, r: int, window_s: int = 60) -> np.ndarray:
    """1 where a long window's excess is still being fed: its newest ``FRESH_S`` seconds (at most
    half the window) are unusual on their own — their events (slow spans, late messages, errors,
    re-sends, ...) have a Poisson tail ``P(X >= k)`` at most ``FRESH_P`` against the usual count
    there. A 15- or 30-minute sum would otherwise stay "abnormal" for up to that long after its
    fault ended, re-armed by one routine event (the tail's 1 in 20), page on a fault that is
    over and swallow the next fault of the same entity into the same anomaly. For the quietest
    entities (a p99.8 line) one event is already that rare. Traffic counts (a drop has no events
    to wait for) and short windows are always fresh."""
    if t.feature.metric == "volume" or r < 5:
        return np.ones(len(k_obs))
    recent = max(1, min(r // 2, round(FRESH_S / max(window_s, 1))))
    k = np.nan_to_num(_trail(k_obs, recent))
    usual = np.maximum(np.nan_to_num(_trail(n_obs, recent)) * t.p0, 1e-9)
    return ((k >= 1) & (stats.poisson.sf(k - 1, usual) <= FRESH_P)).astype(float)


def _threshold_bucket(hist: np.ndarray, share: float = SLOW_SHARE) -> int:
    """The bucket whose upper edge is the usual p95 (at most ``share`` of spans above it)."""
    total = hist.sum()
    if total <= 0:
        return N_BUCKETS - 1
    above = total - np.cumsum(hist)
    return int(np.argmax(above <= share * total))


def _far_bucket(hist: np.ndarray) -> int:
    """The bucket whose upper edge is twice the lower edge of the training maximum's bucket."""
    top = np.flatnonzero(hist > 0)
    return min(N_BUCKETS - 1, (int(top[-1]) if len(top) else 0) + FAR_BUCKETS)


def _far_prior(series: dict[str, Any], keep: np.ndarray, nw: int) -> dict[str, Any]:
    """How often a span lands beyond twice its entity's maximum, estimated out of sample.

    The training windows are split into two folds (alternating blocks of ``CV_BLOCK`` windows);
    each fold's spans are counted above twice the *other* fold's maximum, for every duration,
    self-time and lag histogram. Pooled over all of them this is the rate of "far beyond
    anything seen" (``pooled``); per entity (``own``, by test name) it is that entity's own
    evidence, which outweighs the prior when the entity has a heavy tail. The full-range maximum
    is higher than either fold's, so the estimate errs towards more exceedances (safe)."""
    fold = (np.arange(nw) // CV_BLOCK) % 2
    own: dict[str, tuple[float, float]] = {}
    k_all = n_all = 0.0
    for kind, which, metric in (
        ("svc", "rows", "slow_far"),
        ("svc", "rows2", "self_far"),
        ("lag", "rows", "lag_far"),
    ):
        for (svc, dst), e in series[kind].items():
            tops = [-1, -1]
            per: list[tuple[int, np.ndarray, np.ndarray]] = [(int(fold[w]), keys, cnt) for w, keys, cnt in e[which]
                                                             if keep[w]]  # fmt: skip
            for f_, keys, cnt in per:
                nz = keys[cnt > 0]
                if len(nz):
                    tops[f_] = max(tops[f_], int(nz.max()))
            if min(tops) < 0:
                continue
            k = n = 0.0
            for f_, keys, cnt in per:
                line = tops[1 - f_] + FAR_BUCKETS
                k += float(cnt[keys > line].sum())
                n += float(cnt.sum())
            k_all, n_all = k_all + k, n_all + n
            kind_ = "queue" if kind == "lag" else "service"
            name = Feature(kind_, svc, metric, operation=dst if kind == "lag" else "").name
            own[name] = (k, n)
    return {"pooled": (k_all + 0.5) / (n_all + 1.0), "own": own}


def threshold_ms(bucket: int) -> float:
    return float(bucket_upper_ms(bucket)) if bucket < N_BUCKETS - 1 else float("inf")


def _trimmed_sum(x: np.ndarray, trim: float = 0.01) -> float:
    if not len(x):
        return 0.0
    cut = np.quantile(x, 1 - trim)
    return float(x[x <= cut].sum() * len(x) / max(1, int((x <= cut).sum())))


def _nb_cdf(k: np.ndarray, lam: np.ndarray, phi: float) -> np.ndarray:
    if phi < 1e-6:
        return np.asarray(stats.poisson.cdf(k, lam))
    n = 1 / phi
    return np.asarray(stats.nbinom.cdf(k, n, n / (n + lam)))


def _nb_sf(k: np.ndarray, lam: np.ndarray, phi: float) -> np.ndarray:
    """P(X ≥ k)."""
    if phi < 1e-6:
        return np.asarray(stats.poisson.sf(k - 1, lam))
    n = 1 / phi
    return np.asarray(stats.nbinom.sf(k - 1, n, n / (n + lam)))


__all__ = ["BUCKETS_PER_OCTAVE", "CountTests", "StatScores", "threshold_ms"]
