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
    # A parent may start this long before the window and still pair with a child inside it.
    pair_margin_s: int = Field(default=30, ge=0, le=60)
    # Per-minute edge rollup: on/off, how often, how far back, how settled a minute must be,
    # and how many minutes one run recomputes at most (newest first).
    rollup_enabled: bool = True
    rollup_interval_s: int = Field(default=60, ge=5)
    rollup_horizon_s: int = Field(default=86400, ge=300)
    rollup_settle_s: int = Field(default=120, ge=0)
    rollup_batch_minutes: int = Field(default=60, ge=1, le=240)
    # Span ingest job: how often it copies new spans into the span index and the per-minute
    # tables (seconds; what a query reads past it is computed from otel_traces, so this bounds
    # work per query, not visibility), and about how many rows one batch takes at most.
    ingest_interval_s: float = Field(default=2.0, ge=0.2, le=60)
    ingest_batch_rows: int = Field(default=2_000_000, ge=10_000)
    # While the ingest pipeline has a backlog (a batch waits to be inserted), the job yields its
    # CPU to the inserts, but runs at least this long after its previous run (seconds; 0 = never
    # yields). Queries stay exact meanwhile: they compute what lies past the watermark.
    ingest_max_lag_s: float = Field(default=15.0, ge=0, le=300)
    # Memory the pairing join may hold (MiB): past it the join spills to disk (grace hash) instead
    # of growing with the window's spans. 0 = unbounded (parallel hash join, fastest).
    join_memory_mib: int = Field(default=64, ge=0)
    # Diff thresholds: an edge "changed" when its p95 moved by this ratio or its error rate by
    # this many points (0.05 = 5 percentage points).
    diff_latency_ratio: float = Field(default=1.5, gt=1.0)
    diff_error_rate_delta: float = Field(default=0.05, gt=0.0, le=1.0)
