"""The ``storage`` section: where the store is, its database, retention, cluster mode and table settings."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from otel_ai.sections import Section

DEFAULT_STORAGE = "chdb://./data/clickhouse"


_MERGE_TREE: dict[str, int | float | str] = {
    "merge_selector_base": 20,
    "min_bytes_for_wide_part": 64 * 1024 * 1024,
    "max_compress_block_size": 256 * 1024,
}


class StorageConfig(Section):
    dsn: str = DEFAULT_STORAGE
    database: str = Field(default="otel", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Retention for telemetry tables (the detectors need a week of history).
    ttl_days: int = Field(default=14, ge=0)
    # Cluster mode: emit ON CLUSTER + Replicated*MergeTree + Distributed tables.
    cluster: str | None = None
    replication_path: str = "/clickhouse/tables/{shard}/{database}/{table}"
    connect_timeout_s: float = Field(default=10.0, gt=0)
    query_timeout_s: float = Field(default=60.0, gt=0)
    # MergeTree settings applied to every table of the database at start ({} = the server's).
    # Measured on the embedded engine (docs/ingest-storage.md): merge_selector_base 20 (default 5)
    # re-merges each row fewer times (~1/3 less CPU per span incl. merges); compact parts up to
    # 64 MiB and 256 KiB compression blocks cut the memory each insert and merge holds.
    merge_tree_settings: dict[str, int | float | str] = Field(default_factory=lambda: dict(_MERGE_TREE))
    # Build the attribute bloom-filter indexes of the telemetry tables in background merges
    # instead of at INSERT (~2.5 µs of CPU per span on the embedded engine; a part not merged
    # yet is read whole by attribute filters — same results). The trace-id index stays at insert.
    defer_attribute_indexes: bool = True

    @field_validator("merge_tree_settings")
    @classmethod
    def _setting_names(cls, v: dict[str, int | float | str]) -> dict[str, int | float | str]:
        for key, value in v.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"not a MergeTree setting name: {key!r}")
            if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_.]*", value):
                raise ValueError(f"{key}: only plain words and numbers, got {value!r}")
        return v
