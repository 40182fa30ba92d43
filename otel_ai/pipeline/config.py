"""The ``pipeline`` (queue, batching, acknowledgement, spool, decoder) and ``memory`` (resident-memory guard) sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from otel_ai.sections import Section


class PipelineConfig(Section):
    # Bound of the queue, in items (spans + data points + log records) not yet inserted.
    queue_items: int = Field(default=400_000, gt=0)
    # Second bound of the same queue, in body bytes (a few items can carry huge attributes).
    queue_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    batch_items: int = Field(default=50_000, gt=0)
    # A batch also stops at this many bytes of request bodies: the engine's memory grows with the
    # batch (~10 MiB of realistic spans is ~25k spans), which keeps the daemon under 1 GiB.
    batch_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    batch_timeout_ms: int = Field(default=200, ge=1)
    # Flush early, before batch_timeout_ms, once this many items wait AND an insert worker is idle
    # (group commit: high load forms big batches by itself, low load is not held back).
    batch_min_items: int = Field(default=4096, ge=1)
    # ... and a smaller batch waits this long for more payloads while a worker is idle.
    batch_linger_ms: int = Field(default=10, ge=0)
    # While another insert is running, an idle worker waits for this many items instead (or for
    # batch_timeout_ms): each INSERT has a fixed cost (~40 ms of CPU with the topology views), so
    # under load two half-size batches cost more than one full one. 0 = batch_min_items.
    batch_min_items_busy: int = Field(default=16384, ge=0)
    insert_workers: int = Field(default=2, ge=1)
    # When an export is acknowledged: "spool" (default) — once it is fsynced to a per-signal
    # write-ahead log under spool_dir/wal (group commit), inserted from there in batches of up to
    # batch_items whatever the number of senders; rows become queryable a batch later (~0.2-1 s);
    # "insert" — once its rows are in ClickHouse (read-after-ack; batches hold only what the
    # senders have in flight, so few senders mean small, costly inserts).
    ack: Literal["insert", "spool"] = "spool"
    # ack: spool — at most this many items acknowledged and not yet inserted wait in the log;
    # past it exports get 503 + Retry-After (back-pressure instead of a backlog that makes rows
    # queryable later and later: 400k spans is ~5 s of inserts on 2 cores). 0 = only
    # spool_max_bytes bounds the log.
    wal_max_items: int = Field(default=400_000, ge=0)

    # Unset: beside the store (chdb:///x/clickhouse → /x/spool; a server: ./data/spool-<host>-<port>-<db>);
    # locked, one daemon per spool (otel_ai/instance.py).
    spool_dir: str | None = None
    spool_max_bytes: int = Field(default=4 * 1024**3, gt=0)
    # Write the spool's and the write-ahead log's segment files full of zeros ahead of the
    # appends and reuse replayed ones, so an fsync needs no journal commit (otel_ai/pipeline/
    # spool.py). Off: plain appends, a file grows with each one.
    spool_preallocate: bool = True
    spool_replay_interval_s: float = Field(default=2.0, gt=0)
    # Decoder: "native" flattens protobuf spans in C into ClickHouse Native blocks (fastest; the
    # rest goes to "engine" on chDB or "python" on a server), "engine" lets ClickHouse decode
    # OTLP itself, "python" flattens in Python.
    decoder: Literal["native", "engine", "python"] = "native"


class MemoryConfig(Section):
    # Resident-memory guard (otel_ai.pipeline.memory), after the Collector's memory_limiter; off
    # by default (it trades throughput for memory once the RSS nears the limit; see the README).
    # The RSS the daemon keeps under; exports are refused (503) above limit - spike. 0 = no limit.
    limit_mib: int = Field(default=0, ge=0)
    spike_limit_mib: int = Field(default=256, ge=0)
    # Embedded engine: above this RSS, hand its freed pages back to the OS (0 = never).
    purge_above_mib: int = Field(default=0, ge=0)
    check_interval_ms: int = Field(default=100, ge=10, le=10_000)
    purge_interval_ms: int = Field(default=500, ge=0)

    @model_validator(mode="after")
    def _levels(self) -> MemoryConfig:
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            raise ValueError(
                f"spike_limit_mib ({self.spike_limit_mib}) must be below limit_mib ({self.limit_mib})"
            )
        return self
