"""Window detectors with scikit-learn's estimator contract (docs/decisions/0007-anomaly-estimator-contract.md).

``X`` is windows x (features + ``n_context`` context columns); NaN marks a masked value (volume
guard), which is imputed with the training median and never scored. Every detector here shares
one calibration:

1. a per-feature deviation ``e_j ≥ 0`` (the autoencoder: squared reconstruction residual over its
   median on training windows; baselines: squared z-scores and the like);
2. per-feature calibration ``F_j = e_j / T_j`` so every feature speaks the same "how unusual"
   language (1.0 = the feature's alarm level);
3. window score ``s = max_j F_j`` (the worst feature, not the mean: the mean dilutes a single
   broken figure by 1/d), alarm when ``s > threshold_`` (= ``threshold_margin``).

``T_j`` comes from held-out normal windows. A 0.999 quantile per feature cannot be estimated from
a few hundred windows (it is just the maximum, and with d features some feature beats its own
maximum in almost every new window), so the calibration is peaks-over-threshold (SPOT, Siffer et
al. KDD 2017): each feature is first normalised by a quantile that *can* be estimated
(``base_quantile``, 0.9), the normalised values of features of one kind (``pool_groups``: request
rate, latency, errors, ...) are pooled, a generalized Pareto tail is fitted to the pooled top
``1 - tail_quantile`` (probability-weighted moments, numpy only), and the alarm level is that tail's
quantile for a per-feature probability of ``false_alarm_rate / d`` (Bonferroni over the d
features), so the window false-alarm rate stays within the budget.

``score_samples`` is ``-s`` (lower = more abnormal), ``decision_function`` is
``score_samples - offset_`` (negative = abnormal) and ``predict`` returns ±1.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_array as sk_check_array

from otel_ai.errors import DetectorError

MIN_SAMPLES = 10
VOLUME_GROUPS = frozenset({"rate"})  # pool groups whose own deviation the value term scores


class NotFitted(DetectorError, NotFittedError):
    """Scoring before ``fit`` (scikit-learn's ``NotFittedError`` too)."""


def check_array(X: Any, *, n_columns: int | None = None, name: str = "the detector") -> np.ndarray:
    """2-D float array, NaN allowed (masked values), inf refused; scikit-learn's messages."""
    try:
        arr = sk_check_array(X, dtype=np.float64, ensure_all_finite="allow-nan", ensure_min_samples=1)
    except ValueError as exc:
        raise DetectorError(str(exc)) from None
    if n_columns is not None and arr.shape[1] != n_columns:
        raise DetectorError(
            f"X has {arr.shape[1]} features, but {name} is expecting {n_columns} features as input"
        )
    return np.asarray(arr)


class WindowDetector(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared calibration; subclasses implement ``_fit_core`` and ``_deviation``.

    A scikit-learn estimator (``BaseEstimator``/``OutlierMixin``: ``get_params``/``set_params``,
    ``clone``, ``fit_predict``); NaN input is allowed (masked values)."""

    calibrated = True
    fixed_threshold = 9.0  # for uncalibrated variants: z² > 9 ⇔ |z| > 3

    def __init__(
        self,
        *,
        n_context: int = 0,
        calibration_fraction: float = 0.25,
        false_alarm_rate: float = 1e-3,
        feature_quantile: float = 0.999,
        threshold_margin: float = 1.0,
        clip: float = 20.0,
        random_state: int | None = 0,
        pool_groups: list[str] | None = None,
        base_quantile: float = 0.9,
        tail_quantile: float = 0.95,
        seasonal_slots: int = 0,
    ) -> None:
        self.n_context = n_context
        self.seasonal_slots = seasonal_slots
        self.pool_groups = pool_groups
        self.base_quantile = base_quantile
        self.tail_quantile = tail_quantile
        self.calibration_fraction = calibration_fraction
        self.false_alarm_rate = false_alarm_rate
        self.feature_quantile = feature_quantile
        self.threshold_margin = threshold_margin
        self.clip = clip
        self.random_state = random_state

    # -- the estimator contract ---------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> WindowDetector:
        X = check_array(X)
        n, width = X.shape
        d = width - self.n_context
        if d < 1:
            raise DetectorError(
                f"X needs at least one feature column besides {self.n_context} context columns"
            )
        if n < MIN_SAMPLES:
            raise DetectorError(f"need at least {MIN_SAMPLES} windows to fit, got n_samples = {n}")
        if not 0 < self.false_alarm_rate < 0.5:
            raise DetectorError(f"false_alarm_rate must be in (0, 0.5), got {self.false_alarm_rate}")
        train, cal = self._split(X)
        feats = train[:, :d]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            center = np.nanmedian(feats, axis=0)
            iqr = np.nanpercentile(feats, 75, axis=0) - np.nanpercentile(feats, 25, axis=0)
        self.usable_ = ~np.isnan(center) & (np.mean(~np.isnan(feats), axis=0) >= 0.5)
        self.center_ = np.where(np.isnan(center), 0.0, center)
        self.scale_ = np.where(np.isnan(iqr), 1.0, np.maximum(iqr, 0.05))
        self.n_features_in_ = width
        self.season_ = self._fit_season(train)
        self._fit_core(self._scaled(train), train[:, d:])
        Zc = self._scaled(cal)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mq = np.nanquantile(np.square(self._seasonal(Zc, cal[:, d:])), self.feature_quantile, axis=0)
        self.marginal_threshold_ = np.where(np.isnan(mq), 1.0, np.maximum(mq, 1.0))
        dev = self._deviation(Zc, cal[:, d:])
        if self.calibrated:
            self.feature_threshold_ = self._calibrate(dev)
            self.threshold_ = float(self.threshold_margin)
        else:
            self.feature_threshold_ = np.full(d, self.fixed_threshold)
            self.threshold_ = 1.0
        self.offset_ = -self.threshold_
        return self

    def feature_scores(self, X: Any) -> np.ndarray:
        """Per-feature calibrated deviation (1.0 = the feature's own calibration quantile); masked → 0."""
        X = self._check_fitted(X)
        d = X.shape[1] - self.n_context
        dev = self._deviation(self._scaled(X), X[:, d:]) / self.feature_threshold_
        return np.where(np.isnan(dev), 0.0, dev)

    def marginal_scores(self, X: Any) -> np.ndarray:
        """Per-feature squared robust z over its calibration quantile (the value alone, no model)."""
        X = self._check_fitted(X)
        d = X.shape[1] - self.n_context
        M = np.square(self._seasonal(self._scaled(X), X[:, d:])) / self.marginal_threshold_
        return np.where(np.isnan(M), 0.0, M)

    def score_samples(self, X: Any) -> np.ndarray:
        return -self._max(self.feature_scores(X))

    def decision_function(self, X: Any) -> np.ndarray:
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)

    # -- calibration --------------------------------------------------------------------------
    def _calibrate(self, dev: np.ndarray) -> np.ndarray:
        """Per-feature alarm levels ``T_j`` from held-out deviations (see the module docstring)."""
        d = dev.shape[1]
        if self.pool_groups is not None and len(self.pool_groups) != d:
            raise DetectorError(f"pool_groups has {len(self.pool_groups)} entries for {d} features")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            base = np.nanquantile(dev, self.base_quantile, axis=0)
        base = np.where(np.isnan(base), 1.0, np.maximum(base, self._min_feature_threshold()))
        N = dev / base
        groups = np.asarray(self.pool_groups if self.pool_groups is not None else [""] * d, dtype=object)
        live = self.usable_ & ~np.all(np.isnan(dev), axis=0)
        p = self.false_alarm_rate / max(1, int(live.sum()))
        level = np.ones(d)
        self.tail_ = {}
        for g in sorted(set(groups.tolist())):
            cols = np.flatnonzero((groups == g) & live)
            if not len(cols):
                continue
            vals = N[:, cols].ravel()
            vals = vals[~np.isnan(vals)]
            z, xi = pot_quantile(vals, p, self.tail_quantile)
            z = max(z, 1.0)  # never below the features' own 0.9 quantile (and never 0)
            level[groups == g] = z
            self.tail_[str(g)] = (round(z, 4), round(xi, 4), len(vals))
        return base * level

    # -- helpers ------------------------------------------------------------------------------
    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Held-out calibration windows: interleaved blocks (every k-th of ~53 blocks), so the
        calibration sees every time of day instead of only the tail of the range. 53 is prime:
        with 48 blocks over whole days the held-out blocks fell on the same hours every day, so
        the model never trained on those hours and calibrated on nothing else."""
        n = len(X)
        k = max(2, round(1 / self.calibration_fraction))
        block = max(1, n // 53)
        held = (np.arange(n) // block) % k == k - 1
        if held.sum() < 5 or (~held).sum() < 5:
            held = np.arange(n) >= n - max(5, round(n * self.calibration_fraction))
        return X[~held], X[held]

    def _min_feature_threshold(self) -> float:
        return 1e-6

    def _max(self, F: np.ndarray) -> np.ndarray:
        F = np.where(np.isnan(F), 0.0, F)
        return F.max(axis=1) if F.shape[1] else np.zeros(len(F))

    def _check_fitted(self, X: Any) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise NotFitted(f"{type(self).__name__} is not fitted yet: call fit() first")
        return check_array(X, n_columns=self.n_features_in_, name=type(self).__name__)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """Robust z (median/IQR), clipped, minus the time-of-day profile when ``seasonal_slots``;
        masked and unusable columns stay NaN."""
        d = X.shape[1] - self.n_context
        Z = np.clip((X[:, :d] - self.center_) / self.scale_, -self.clip, self.clip)
        Z[:, ~self.usable_] = np.nan
        return Z

    def _value_columns(self, d: int) -> np.ndarray:
        """Volume features (request rates): the ones a time-of-day profile applies to."""
        if self.pool_groups is None:
            return np.ones(d, bool)
        return np.array([str(g).split(":")[0] in VOLUME_GROUPS for g in self.pool_groups], bool)

    def _seasonal(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        """``Z`` with the daily profile removed from the volume columns (identity without one)."""
        season = getattr(self, "season_", None)
        if season is None or season.shape[0] <= 1:
            return Z
        cols = self._value_columns(Z.shape[1])
        out = Z.copy()
        out[:, cols] -= self._profile(season, ctx)[:, cols]
        return out

    @staticmethod
    def _tod_slot(ctx: np.ndarray, slots: int) -> np.ndarray:
        """Time-of-day slot from the sin/cos context columns."""
        if ctx.shape[1] < 2:
            return np.zeros(len(ctx), dtype=int)
        phase = (np.arctan2(ctx[:, 0], ctx[:, 1]) % (2 * np.pi)) / (2 * np.pi)
        return np.minimum((phase * slots).astype(int), slots - 1)

    @staticmethod
    def _profile(season: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        """The daily profile at each window: linear between slot centres (a step profile would
        leave the within-slot slope of a steep diurnal curve as noise)."""
        k = season.shape[0]
        phase = (np.arctan2(ctx[:, 0], ctx[:, 1]) % (2 * np.pi)) / (2 * np.pi)
        pos = phase * k - 0.5
        lo = np.floor(pos)
        w = (pos - lo)[:, None]
        i0 = lo.astype(int) % k
        return (1 - w) * season[i0] + w * season[(i0 + 1) % k]

    def _fit_season(self, train: np.ndarray) -> np.ndarray:
        """Per time-of-day slot, the median robust z of every feature (the daily profile).

        Only with ``seasonal_slots`` > 0, time-of-day context, and at least 3 windows in every
        slot (in practice a full day of history); else no profile.
        """
        d = train.shape[1] - self.n_context
        k = self.seasonal_slots
        if k <= 1 or self.n_context < 2:
            return np.zeros((1, d))
        slot = self._tod_slot(train[:, d:], k)
        counts = np.bincount(slot, minlength=k)
        if counts.min() < 3:
            return np.zeros((1, d))
        Z = np.clip((train[:, :d] - self.center_) / self.scale_, -self.clip, self.clip)
        season = np.zeros((k, d))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in range(k):
                season[i] = np.nan_to_num(np.nanmedian(Z[slot == i], axis=0))
        return season

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        raise NotImplementedError

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def pot_quantile(values: np.ndarray, p: float, tail_quantile: float = 0.95) -> tuple[float, float]:
    """The level exceeded with probability ``p``: a generalized Pareto tail fitted by
    probability-weighted moments (Hosking & Wallis 1987) to the values above their
    ``tail_quantile`` (SPOT's initial threshold). Returns ``(level, shape ξ)``; with fewer than
    30 tail points it falls back to the largest value (ξ reported as NaN)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if n == 0:
        return 1.0, float("nan")
    t = float(np.quantile(v, tail_quantile))
    y = v[v > t] - t
    if len(y) < 30 or p >= (len(y) / n):
        return float(max(v[-1], t)), float("nan")
    m = len(y)
    a0 = float(y.mean())
    pp = (np.arange(1, m + 1) - 0.35) / m
    a1 = float(np.mean((1 - pp) * y))
    if a0 <= 2 * a1 or a0 <= 0:
        return float(v[-1]), float("nan")
    k = a0 / (a0 - 2 * a1) - 2  # Hosking's k = -ξ
    sigma = 2 * a0 * a1 / (a0 - 2 * a1)
    xi = float(np.clip(-k, -0.5, 1.0))  # bounded: a wild shape from a few points must not explode
    q = p * n / m  # tail probability conditional on exceeding t
    z = t + (sigma / xi * (q ** (-xi) - 1) if abs(xi) > 1e-6 else -sigma * np.log(q))
    return float(max(z, v[-1])), xi


def _act(name: str, a: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-a))
    return a


class AutoencoderDetector(WindowDetector):
    """An MLP autoencoder (scikit-learn ``MLPRegressor``) that reconstructs robust-scaled features.

    Context columns (time of day) are inputs only. After ``fit`` the network is kept as plain
    numpy weights (``coefs_``/``intercepts_``), so scoring and persistence need no pickle.
    """

    def __init__(
        self,
        *,
        hidden: int | None = None,
        bottleneck: int | None = None,
        activation: str = "tanh",
        alpha: float = 1e-3,
        max_iter: int = 300,
        n_context: int = 0,
        calibration_fraction: float = 0.25,
        false_alarm_rate: float = 1e-3,
        feature_quantile: float = 0.999,
        threshold_margin: float = 1.0,
        clip: float = 20.0,
        random_state: int | None = 0,
        pool_groups: list[str] | None = None,
        base_quantile: float = 0.9,
        tail_quantile: float = 0.95,
        seasonal_slots: int = 0,
        value_term: bool = False,
    ) -> None:
        super().__init__(
            n_context=n_context, calibration_fraction=calibration_fraction, false_alarm_rate=false_alarm_rate,
            feature_quantile=feature_quantile, threshold_margin=threshold_margin, clip=clip,
            random_state=random_state, pool_groups=pool_groups, base_quantile=base_quantile,
            tail_quantile=tail_quantile, seasonal_slots=seasonal_slots,
        )  # fmt: skip
        self.value_term = value_term
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.activation = activation
        self.alpha = alpha
        self.max_iter = max_iter

    def _min_feature_threshold(self) -> float:
        return 1.0  # the training median of the normalised residual: stable features must move to count

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        d = Z.shape[1]
        h = self.hidden or int(np.clip(d // 2, 16, 128))
        b = self.bottleneck or int(np.clip(round(d / 8), 4, 16))
        Zf = np.nan_to_num(Z, nan=0.0)
        mlp = MLPRegressor(
            hidden_layer_sizes=(h, b, h), activation=self.activation, alpha=self.alpha,
            learning_rate_init=1e-3, max_iter=self.max_iter, early_stopping=len(Zf) >= 50, n_iter_no_change=10,
            random_state=self.random_state,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(np.hstack([Zf, ctx]), Zf)
        self.coefs_ = [np.asarray(c) for c in mlp.coefs_]
        self.intercepts_ = [np.asarray(c) for c in mlp.intercepts_]
        self.n_iter_ = int(mlp.n_iter_)
        r2 = np.square(self._reconstruct(Zf, ctx) - Z)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(r2, axis=0)
        self.residual_scale_ = np.where(np.isnan(med), 1.0, np.maximum(med, 0.01))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vmed = np.nanmedian(np.square(self._seasonal(Z, ctx)), axis=0)
        self.value_scale_ = np.where(np.isnan(vmed), 1.0, np.maximum(vmed, 0.01))

    def _reconstruct(self, Zf: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        # einsum's own loop, not BLAS: a BLAS product's rounding depends on how many rows it
        # multiplies at once (numpy 2.4's OpenBLAS kernels), so a window scored in a replay and
        # live, or alone and in a batch, could land on either side of its alarm level (scikit-learn's
        # check_methods_subset_invariance failed). ~3x the time of BLAS, ~50 ms for 3000 windows.
        a = np.hstack([Zf, ctx])
        last = len(self.coefs_) - 1
        for i, (W, c) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            a = np.einsum("ij,jk->ik", a, W) + c
            if i < last:
                a = _act(self.activation, a)
        return a

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        R = self._reconstruct(np.nan_to_num(Z, nan=0.0), ctx)
        dev = np.square(R - Z) / self.residual_scale_
        if self.value_term:
            # An autoencoder follows a *coherent* shift along what it learned (all request rates
            # down together look like night), so the reconstruction alone misses a traffic drop;
            # for volume features the value's own deviation from the time-of-day profile counts
            # too. Not for the others: latency that rises with load is exactly the relation the
            # model is there to learn (a flash crowd must not page on its latency).
            cols = self._value_columns(Z.shape[1])
            V = self._seasonal(Z, ctx)
            dev[:, cols] = np.fmax(dev[:, cols], np.square(V[:, cols]) / self.value_scale_[cols])
        return dev

    def expected(self, X: Any) -> np.ndarray:
        """The reconstruction in the (transformed) feature units: the learned baseline."""
        X = self._check_fitted(X)
        d = X.shape[1] - self.n_context
        Z = self._scaled(X)
        R = self._reconstruct(np.nan_to_num(Z, nan=0.0), X[:, d:])
        season = getattr(self, "season_", None)
        if self.value_term and season is not None and season.shape[0] > 1:
            # A request rate is judged against its time-of-day profile (the reconstruction follows
            # a coherent drop), so that is its baseline, and the sign of its deviation.
            cols = self._value_columns(d)
            R[:, cols] = self._profile(season, X[:, d:])[:, cols]
        return self.center_ + self.scale_ * R

    # -- persistence --------------------------------------------------------------------------
    _STATE = (
        "center_",
        "scale_",
        "usable_",
        "residual_scale_",
        "feature_threshold_",
        "marginal_threshold_",
        "season_",
        "value_scale_",
    )

    def to_bytes(self) -> bytes:
        if not hasattr(self, "threshold_"):
            raise DetectorError("cannot save an unfitted detector")
        arrays: dict[str, np.ndarray] = {k: getattr(self, k) for k in self._STATE}
        for i, (W, c) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, c
        meta = {**self.get_params(), "threshold_": self.threshold_, "n_features_in_": self.n_features_in_,
                "n_layers": len(self.coefs_), "n_iter_": self.n_iter_}  # fmt: skip
        arrays["meta"] = np.frombuffer(repr(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> AutoencoderDetector:
        import ast

        try:
            data = np.load(io.BytesIO(blob), allow_pickle=False)
            meta = ast.literal_eval(bytes(data["meta"]).decode())
        except Exception as exc:
            raise DetectorError(f"stored model is unreadable: {exc}") from None
        params = {k: meta[k] for k in cls().get_params()}
        det = cls(**params)
        missing = [k for k in cls._STATE if k not in data.files]
        if missing:
            raise DetectorError(f"stored model lacks {', '.join(missing)} (an older format)")
        for k in cls._STATE:
            setattr(det, k, np.asarray(data[k]))
        det.coefs_ = [np.asarray(data[f"W{i}"]) for i in range(meta["n_layers"])]
        det.intercepts_ = [np.asarray(data[f"b{i}"]) for i in range(meta["n_layers"])]
        det.threshold_, det.offset_ = float(meta["threshold_"]), -float(meta["threshold_"])
        det.n_features_in_, det.n_iter_ = int(meta["n_features_in_"]), int(meta["n_iter_"])
        return det
