"""Configuration of anomaly detection (YAML section ``anomaly``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnomalyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Scoring interval and window length (seconds).
    interval_s: int = Field(default=60, ge=5)
    window_s: int = Field(default=60, ge=10)
