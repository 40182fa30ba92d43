"""Baseline detectors on the same features, scaling and calibration as the autoencoder.

The usual comparators: per-feature 3-sigma (raw |z| > 3, and calibrated to the budget),
robust z (median/MAD, the N-Sigma / RobustScorer family), a seasonal z-score (SigNoz-style, daily
season by time-of-day slot), IsolationForest and PCA (a linear autoencoder). Raw variants show the
alert-fatigue problem; calibrated ones are the fair comparison.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from otel_ai.analysis.anomaly.detector import AutoencoderDetector, WindowDetector


class ThreeSigmaDetector(WindowDetector):
    """Per-feature ``((x - mean) / std)²``; ``calibrated=False`` alerts at |z| > 3."""

    def __init__(self, *, calibrated: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.calibrated = calibrated

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mean_ = np.nan_to_num(np.nanmean(Z, axis=0))
            self.std_ = np.maximum(np.nan_to_num(np.nanstd(Z, axis=0), nan=1.0), 1e-3)

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        return np.square((Z - self.mean_) / self.std_)


class RobustZDetector(WindowDetector):
    """Per-feature ``((x - median) / (1.4826·MAD))²`` (BARO's RobustScorer statistics)."""

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median_ = np.nan_to_num(np.nanmedian(Z, axis=0))
            mad = np.nanmedian(np.abs(Z - self.median_), axis=0)
        self.mad_ = np.maximum(np.nan_to_num(mad, nan=1.0) * 1.4826, 1e-2)

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        return np.square((Z - self.median_) / self.mad_)


class SeasonalZDetector(WindowDetector):
    """z-score against the same time-of-day slot (daily season) of the training days.

    The slot comes from the sin/cos context columns; ``calibrated=False`` alerts at |z| > 3 like
    SigNoz's default.
    """

    def __init__(self, *, slots: int = 24, calibrated: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.slots = slots
        self.calibrated = calibrated

    def _slot(self, ctx: np.ndarray) -> np.ndarray:
        if ctx.shape[1] < 2:
            return np.zeros(len(ctx), dtype=int)
        phase = (np.arctan2(ctx[:, 0], ctx[:, 1]) % (2 * np.pi)) / (2 * np.pi)
        return np.minimum((phase * self.slots).astype(int), self.slots - 1)

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        slot = self._slot(ctx)
        d = Z.shape[1]
        self.slot_mean_ = np.zeros((self.slots, d))
        self.slot_std_ = np.ones((self.slots, d))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            overall_m, overall_s = np.nanmean(Z, axis=0), np.nanstd(Z, axis=0)
            for k in range(self.slots):
                part = Z[slot == k]
                m = np.nanmean(part, axis=0) if len(part) else overall_m
                s = np.nanstd(part, axis=0) if len(part) > 2 else overall_s
                self.slot_mean_[k] = np.where(np.isnan(m), np.nan_to_num(overall_m), m)
                self.slot_std_[k] = np.maximum(
                    np.where(np.isnan(s), np.nan_to_num(overall_s, nan=1.0), s), 1e-2
                )

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        slot = self._slot(ctx)
        return np.square((Z - self.slot_mean_[slot]) / self.slot_std_[slot])


class IsolationForestDetector(WindowDetector):
    """scikit-learn IsolationForest (200 trees) over the scaled features and context; one score."""

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        self.forest_ = IsolationForest(n_estimators=200, random_state=self.random_state)
        self.forest_.fit(np.hstack([np.nan_to_num(Z), ctx]))

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        s = -self.forest_.score_samples(np.hstack([np.nan_to_num(Z), ctx]))
        return np.repeat(s.reshape(-1, 1), Z.shape[1], axis=1)  # one score, on every column


class PCADetector(WindowDetector):
    """PCA reconstruction (a linear autoencoder): squared residual per feature over its median."""

    def __init__(self, *, n_components: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.n_components = n_components

    def _fit_core(self, Z: np.ndarray, ctx: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        d = Z.shape[1]
        k = self.n_components or int(np.clip(round(d / 8), 2, 16))
        Zf = np.nan_to_num(Z)
        self.pca_ = PCA(n_components=min(k, d, len(Zf)), random_state=self.random_state).fit(Zf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(self._r2(Z), axis=0)
        self.residual_scale_ = np.where(np.isnan(med), 1.0, np.maximum(med, 0.01))

    def _r2(self, Z: np.ndarray) -> np.ndarray:
        Zf = np.nan_to_num(Z)
        return np.square(self.pca_.inverse_transform(self.pca_.transform(Zf)) - Z)

    def _deviation(self, Z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        return self._r2(Z) / self.residual_scale_


def baseline_detectors(
    n_context: int, false_alarm_rate: float, random_state: int = 0
) -> dict[str, WindowDetector]:
    """Every comparator under one budget; names are the evaluation table's row labels."""
    kw: dict[str, Any] = {
        "n_context": n_context,
        "false_alarm_rate": false_alarm_rate,
        "random_state": random_state,
    }
    return {
        "3sigma-raw": ThreeSigmaDetector(calibrated=False, **kw),
        "3sigma-cal": ThreeSigmaDetector(calibrated=True, **kw),
        "robust-z": RobustZDetector(**kw),
        "seasonal-z-raw": SeasonalZDetector(calibrated=False, **kw),
        "seasonal-z-cal": SeasonalZDetector(calibrated=True, **kw),
        "iforest": IsolationForestDetector(**kw),
        "pca": PCADetector(**kw),
        "linear-ae": AutoencoderDetector(activation="identity", **kw),
    }
