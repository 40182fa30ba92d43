"""Configuration of the insights room (YAML section ``insights``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from otel_ai.analysis.insights.detectors.config import DetectorsConfig


class InsightsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # The scheduled job: every interval_s over the last lookback_s.
    interval_s: int = Field(default=300, ge=10)
    lookback_s: int = Field(default=900, ge=60)
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
