"""Configuration of anomaly detection (YAML section ``anomaly``).

Defaults (docs/anomaly.md): 1-minute windows, a false-alarm
budget calibrated on held-out normal windows, open after 2 abnormal windows, close after 5 normal
ones, expiry after 48 h, a nightly retrain on the trailing 7 days.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnomalyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Scoring interval and window length (seconds).
    interval_s: int = Field(default=60, ge=5)
    window_s: int = Field(default=60, ge=10)
    # Features: operations tracked per service (top-K by training volume) and the volume guard.
    top_operations: int = Field(default=3, ge=0, le=20)
    min_count: int = Field(
        default=20, ge=1, description="spans per window before latency/error features count"
    )
    min_errors: int = Field(
        default=5, ge=0, description="absolute error floor before an error ratio may alert"
    )
    # Training and calibration.
    train_days: float = Field(default=7.0, gt=0)
    min_history_s: int = Field(default=6 * 3600, ge=0, description="history needed before the first model")
    retrain_interval_s: int = Field(default=6 * 3600, ge=60)
    calibration_fraction: float = Field(default=0.25, gt=0.05, lt=0.9)
    false_alarm_rate: float = Field(
        default=0.001, gt=0, lt=0.5, description="share of clean windows allowed above threshold"
    )
    threshold_margin: float = Field(default=1.0, gt=0)
    hidden: int | None = Field(default=None, ge=2)
    bottleneck: int | None = Field(default=None, ge=1)
    alpha: float = Field(default=1e-3, ge=0)
    max_iter: int = Field(default=300, ge=10)
    random_state: int = 0
    seasonal_slots: int = Field(
        default=24, ge=0, le=288, description="time-of-day profile slots removed before the model (0 = off)"
    )
    value_term: bool = Field(
        default=True, description="score a figure's own deviation too, not only its reconstruction error"
    )
    # Count tests (``stats.py``): exact small-count tests over multi-resolution windows.
    count_tests: bool = Field(
        default=True, description="also score additive counts (quiet entities, retries, queue lag)"
    )
    resolutions_s: list[int] = Field(
        default=[60, 300, 900, 1800], min_length=1, max_length=6,
        description="window lengths of the count tests; quiet entities use the longer ones",
    )  # fmt: skip
    count_min: int = Field(
        default=20, ge=1, description="spans per window that make a resolution long enough"
    )
    # The count tests' budget per window, Bonferroni over every (test, resolution) pair. The bound
    # is loose (trailing sums of one test at 4 resolutions hold the same events; discrete tails
    # rarely reach their level): 0.003 paged 0 times in 48 clean hours of random applications,
    # 0.01 once (docs/anomaly.md).
    count_false_alarm_rate: float = Field(default=0.003, gt=0, lt=0.5)
    min_ratio: float = Field(
        default=3.0, ge=1.0, description="a share (slow, errors) must reach this x its baseline"
    )
    min_drop: float = Field(default=0.3, gt=0, lt=1, description="a traffic drop must be at least this share")
    min_latency_change: float = Field(
        default=0.2,
        ge=0,
        description="latency figures of the autoencoder count only when this far from baseline",
    )
    # Hysteresis, merging and expiry.
    open_after: int = Field(default=2, ge=1)
    open_strong: float = Field(
        default=2.0, ge=0,
        description="a count test this many decades (log10 p) beyond its alarm level opens at once (0: off)",
    )  # fmt: skip
    close_after: int = Field(default=5, ge=1)
    close_ratio: float = Field(default=0.9, gt=0, le=1.0)
    expire_s: int = Field(default=48 * 3600, ge=60)
    rerank_s: int = Field(
        default=300, ge=0, description="root causes are re-ranked while the anomaly is this young, then kept"
    )
    adopt_level_shift_s: int = Field(
        default=6 * 3600, ge=600, description="an anomaly open this long becomes the new normal at retrain"
    )
    example_traces: int = Field(default=5, ge=0, le=50)
    refresh_windows: int = Field(
        default=3, ge=1, le=30,
        description="closed windows a scoring cycle reads again (late spans); older ones are kept as read",
    )  # fmt: skip
