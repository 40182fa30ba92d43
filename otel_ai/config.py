"""Typed configuration: defaults in code, then the YAML file, then ``OTEL_AI_*`` variables, then flags.

Each room of the package owns the model of its own section (``otel_ai.llm.config`` and so on);
this module only composes them, loads the sources in order and turns validation failures into
:class:`~otel_ai.errors.ConfigError` messages that name the YAML key.

Environment variables: the CLI flags have short names (``OTEL_AI_STORAGE``, ``OTEL_AI_OTLP_GRPC``,
``OTEL_AI_OTLP_HTTP``, ``OTEL_AI_API``, ``OTEL_AI_CONFIG``); any other key is reachable with a
double underscore per level, e.g. ``OTEL_AI_PIPELINE__QUEUE_SIZE=20000``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.errors import ConfigError
from otel_ai.llm.config import LLMConfig

DEFAULT_STORAGE = "chdb://./data/clickhouse"


def _check_hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(Section):
    otlp_grpc: str = "127.0.0.1:4317"
    otlp_http: str = "127.0.0.1:4318"
    api: str = "127.0.0.1:8700"
    # Receivers can be switched off (e.g. an analyzer-only instance in a cluster).
    receivers_enabled: bool = True
    # Role in a scaled-out deployment: "all" runs receivers and the scheduled analyzers,
    # "ingest" runs receivers only, "analyzer" runs the analyzers only (DESIGN.md decision 10).
    role: Literal["all", "ingest", "analyzer"] = "all"
    shutdown_timeout_s: float = Field(default=15.0, gt=0)

    @field_validator("otlp_grpc", "otlp_http", "api")
    @classmethod
    def _hostport(cls, value: str) -> str:
        return _check_hostport(value)


_MERGE_TREE: dict[str, int | float | str] = {
    "merge_selector_base": 20,
    "min_bytes_for_wide_part": 64 * 1024 * 1024,
    "max_compress_block_size": 256 * 1024,
}


class StorageConfig(Section):
    dsn: str = DEFAULT_STORAGE
    database: str = Field(default="otel", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Retention for telemetry tables (DESIGN.md decision 2: detectors need a week of history).
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


class IngestConfig(Section):
    # OTLP spec v1.11.0: RECOMMENDED 64 MiB limit, enforced after decompression; over → 413.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    grpc_max_workers: int = Field(default=8, ge=1)
    # Retry hint sent with 503 / UNAVAILABLE.
    retry_after_s: int = Field(default=2, ge=1)
    # What is accepted, checked before the ack (otel_ai/otlp/limits.py, docs/reliability.md):
    # attributes per resource / scope / span / event / link / log record / data point, ...
    max_attributes: int = Field(default=8192, ge=1)
    # ... encoded bytes of one attribute (key and value), ...
    max_attribute_bytes: int = Field(default=1024 * 1024, ge=64)
    # ... and resource + scope bytes repeated over all rows of a request, per byte of the request.
    max_resource_amplification: int = Field(default=64, ge=1)
    # TLS on both receivers (PEM files; both or neither), like the Collector's receiver `tls`.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Optional bearer token the receivers require (`Authorization: Bearer <token>` header or gRPC
    # metadata, like the Collector's bearertokenauth): 401 / UNAUTHENTICATED without it.
    token: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> IngestConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self


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
    # When an export is acknowledged: "insert" — once its rows are in ClickHouse (read-after-ack);
    # "spool" — once it is fsynced to a per-signal write-ahead log under spool_dir/wal, inserted
    # from there in batches of up to batch_items (much bigger batches under load; rows become
    # queryable a batch later).
    ack: Literal["insert", "spool"] = "insert"

    # Unset: beside the store (chdb:///x/clickhouse → /x/spool; a server: ./data/spool-<host>-<port>-<db>);
    # locked, one daemon per spool (otel_ai/instance.py).
    spool_dir: str | None = None
    spool_max_bytes: int = Field(default=4 * 1024**3, gt=0)
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


class ApiConfig(Section):
    # Optional bearer token required on /api/*. Never logged or returned.
    token: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_window_days: int = Field(default=31, gt=0)
    # With a token: also require it on /metrics (Prometheus then sends it) and on /docs,
    # /redoc, /openapi.json. Off: those stay open like /healthz and /readyz.
    protect_metrics: bool = False
    protect_docs: bool = False
    # HTTPS for the API (PEM files; both or neither).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self


class SchedulerConfig(Section):
    enabled: bool = True


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


class Config(Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    topology: TopologyConfig = Field(default_factory=TopologyConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


# Short environment names for the CLI flags → dotted YAML key.
FLAG_ENV = {
    "OTEL_AI_STORAGE": "storage.dsn",
    "OTEL_AI_OTLP_GRPC": "server.otlp_grpc",
    "OTEL_AI_OTLP_HTTP": "server.otlp_http",
    "OTEL_AI_API": "server.api",
    "OTEL_AI_API_TOKEN": "api.token",
}


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if name in FLAG_ENV:
            _set_dotted(tree, FLAG_ENV[name], value)
        elif name.startswith("OTEL_AI_") and "__" in name:
            dotted = name[len("OTEL_AI_") :].lower().replace("__", ".")
            # Values are parsed as YAML scalars so numbers, booleans and lists work.
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
            _set_dotted(tree, dotted, parsed)
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _raise_named(exc: ValidationError) -> None:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    raise ConfigError(key, msg) from exc


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the configuration: defaults ← YAML file ← environment ← ``overrides`` (dotted keys)."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("OTEL_AI_CONFIG")
    tree: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("--config", f"cannot read {p}: {exc.strerror or exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError("--config", f"{p} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("<root>", f"{p} must hold a mapping of sections, not {type(loaded).__name__}")
        tree = loaded
    tree = _merge(tree, _env_overrides(environ))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, dotted, value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        _raise_named(exc)
        raise  # unreachable; keeps type checkers content
