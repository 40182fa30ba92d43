"""The estimator contract of the autoencoder and the baselines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from otel_ai.analysis.anomaly.baselines import baseline_detectors
from otel_ai.analysis.anomaly.detector import AutoencoderDetector
from otel_ai.errors import DetectorError


def _data(n: int = 600, d: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = np.sin(2 * np.pi * t / 200)[:, None] * np.linspace(0.5, 1.5, d)[None, :]
    X = base + 0.1 * rng.standard_normal((n, d))
    ctx = np.column_stack([np.sin(2 * np.pi * t / 200), np.cos(2 * np.pi * t / 200)])
    return np.hstack([X, ctx])


def _ae(**kw: object) -> AutoencoderDetector:
    return AutoencoderDetector(n_context=2, max_iter=200, random_state=0, **kw)  # type: ignore[arg-type]


def test_init_stores_params_only() -> None:
    det = _ae(alpha=0.01)
    assert det.get_params()["alpha"] == 0.01
    assert not [k for k in vars(det) if k.endswith("_")]


def test_unfitted_detector_raises() -> None:
    with pytest.raises(DetectorError, match="not fitted"):
        _ae().score_samples(_data(30))
    with pytest.raises(DetectorError, match="unfitted"):
        _ae().to_bytes()


@pytest.mark.parametrize(
    "X, message",
    [(np.zeros(10), "2D"), (np.zeros((5, 4)), "at least 10"), (np.full((40, 4), np.inf), "infinity")],
    ids=["1d", "too-few", "inf"],
)
def test_fit_validates(X: np.ndarray, message: str) -> None:
    with pytest.raises(DetectorError, match=message):
        _ae().fit(X)


def test_shapes_signs_and_injected_outlier() -> None:
    X = _data()
    det = _ae().fit(X)
    assert det.threshold_ >= 1.0 and det.offset_ == -det.threshold_
    test = _data(100, seed=1)
    test[50, 3] += 3.0  # one broken figure: a max score catches it, a mean would dilute it
    s, dfn, pred = det.score_samples(test), det.decision_function(test), det.predict(test)
    assert s.shape == dfn.shape == pred.shape == (100,)
    assert set(np.unique(pred)) <= {-1, 1}
    assert pred[50] == -1 and int(np.argmin(s)) == 50
    assert np.mean(pred == -1) <= 0.1  # the rest stays mostly quiet
    F = det.feature_scores(test)
    assert F.shape == (100, 12) and int(np.argmax(F[50])) == 3
    with pytest.raises(DetectorError, match="expecting 14 features"):
        det.score_samples(test[:, :5])


def test_masked_values_are_not_scored() -> None:
    X = _data()
    det = _ae().fit(X)
    test = _data(50, seed=2)
    test[10, 0] = np.nan
    assert det.feature_scores(test)[10, 0] == 0.0


def test_deterministic_with_seed() -> None:
    X = _data()
    a, b = _ae().fit(X), _ae().fit(X)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


def test_persistence_round_trip() -> None:
    X = _data()
    det = _ae().fit(X)
    back = AutoencoderDetector.from_bytes(det.to_bytes())
    np.testing.assert_allclose(back.score_samples(X), det.score_samples(X))
    assert back.threshold_ == det.threshold_ and back.get_params() == det.get_params()
    with pytest.raises(DetectorError, match="unreadable"):
        AutoencoderDetector.from_bytes(b"not a model")


@pytest.mark.parametrize("name", list(baseline_detectors(2, 1e-3)), ids=str)
def test_baselines_follow_the_contract(name: str) -> None:
    det = baseline_detectors(2, 1e-3)[name]
    X = _data()
    det.fit(X)
    test = _data(80, seed=3)
    test[40, :12] += 5.0
    pred = det.predict(test)
    assert pred.shape == (80,) and pred[40] == -1
    assert det.score_samples(test)[40] == det.score_samples(test).min()


def test_scikit_learn_estimator_checks() -> None:
    """The detector is a scikit-learn estimator: ``clone`` works and every applicable check of
    ``check_estimator`` passes (skipped: array-API input, which needs SCIPY_ARRAY_API)."""
    from sklearn.base import clone
    from sklearn.utils.estimator_checks import check_estimator

    det = clone(_ae(alpha=0.05))
    assert det.get_params()["alpha"] == 0.05 and not hasattr(det, "threshold_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(AutoencoderDetector(max_iter=20), on_fail=None)
    bad = [(r["check_name"], str(r["exception"])[:120]) for r in results if r["status"] == "failed"]
    assert not bad, bad
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}, skipped
    assert sum(r["status"] == "passed" for r in results) >= 40
