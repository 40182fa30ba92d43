"""Configuration of topology discovery (YAML section ``topology``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TopologyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # How often the snapshot job stores a topology snapshot (seconds).
    snapshot_interval_s: int = Field(default=60, ge=5)
    # Window each snapshot covers, ending at the last closed minute (seconds).
    snapshot_window_s: int = Field(default=300, ge=60)
    # Operations listed per node.
    top_operations: int = Field(default=10, ge=0, le=1000)
