"""Thresholds of the detectors (YAML ``insights.detectors``); one sub-section per kind."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DetectorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
