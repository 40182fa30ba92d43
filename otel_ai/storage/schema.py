"""Schema as data: table and view specs rendered for one server or for a cluster.

The telemetry tables follow the OpenTelemetry Collector contrib ClickHouse exporter
(``otel_traces``, ``otel_traces_trace_id_ts`` + MV, ``otel_logs``, ``otel_metrics_*``): same names,
column names, types and value encodings, so Grafana's ClickHouse datasource in OTel mode reads our
data unchanged. Extra columns are ours (``IngestEncoding``, ``IngestTransport``, span flags and
dropped counts); our own tables are prefixed ``otel_ai_``.

Cluster mode (docs/decisions/0002 and 0010): every MergeTree table becomes ``<name>_local`` with a
``Replicated*MergeTree`` engine created ``ON CLUSTER``, plus a ``Distributed`` table under the
public name; materialized views read and write the local tables so they fire on each shard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the client applies migrations; only its type is needed here
    from otel_ai.storage.client import Storage


@dataclass(frozen=True)
class SchemaContext:
    """What a rendering needs: database, optional cluster, retention."""

    database: str
    cluster: str | None = None
    ttl_days: int = 14
    replication_path: str = "/clickhouse/tables/{shard}/{database}/{table}"

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""


@dataclass(frozen=True)
class TableSpec:
    """A MergeTree-family table. ``columns`` is the body between the parentheses.

    ``engine`` is the unreplicated engine name with its arguments (``MergeTree()``,
    ``ReplacingMergeTree(Version)``); cluster mode adds the replication path and replica.
    ``ttl`` is an expression over the table's time column, or ``None`` for no retention.
    """

    name: str
    columns: str
    order_by: str
    engine: str = "MergeTree()"
    partition_by: str | None = None
    primary_key: str | None = None
    ttl: str | None = None
    settings: str = "index_granularity = 8192"
    sharding_key: str = "rand()"

    def render(self, ctx: SchemaContext) -> list[str]:
        db = f"`{ctx.database}`"
        local = f"{self.name}_local" if ctx.cluster else self.name
        engine = self.engine
        if ctx.cluster:
            kind, _, args = engine.partition("(")
            args = args.rstrip(")")
            repl = f"'{ctx.replication_path}', '{{replica}}'"
            engine = f"Replicated{kind}({repl}{', ' + args if args else ''})"
        parts = [f"CREATE TABLE IF NOT EXISTS {db}.`{local}`{ctx.on_cluster} (\n{self.columns.strip()}\n)"]
        parts.append(f"ENGINE = {engine}")
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        if self.primary_key:
            parts.append(f"PRIMARY KEY {self.primary_key}")
        parts.append(f"ORDER BY {self.order_by}")
        if self.ttl and ctx.ttl_days > 0:
            parts.append(f"TTL {self.ttl} + toIntervalDay({int(ctx.ttl_days)})")
        settings = self.settings
        if self.ttl:
            settings += ", ttl_only_drop_parts = 1"
        parts.append(f"SETTINGS {settings}")
        out = ["\n".join(parts)]
        if ctx.cluster:
            out.append(
                f"CREATE TABLE IF NOT EXISTS {db}.`{self.name}`{ctx.on_cluster} AS {db}.`{local}`\n"
                f"ENGINE = Distributed(`{ctx.cluster}`, `{ctx.database}`, `{local}`, {self.sharding_key})"
            )
        return out


@dataclass(frozen=True)
class ViewSpec:
    """A materialized view ``name`` writing ``select`` (over ``source``) into ``target``.

    The select names the source table as ``{source}`` so cluster mode can swap in the local table.
    """

    name: str
    source: str
    target: str
    select: str

    def render(self, ctx: SchemaContext) -> list[str]:
        db = f"`{ctx.database}`"
        suffix = "_local" if ctx.cluster else ""
        select = self.select.replace("{source}", f"{db}.`{self.source}{suffix}`")
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`{self.name}`{ctx.on_cluster}\n"
            f"TO {db}.`{self.target}{suffix}`\nAS {select.strip()}"
        ]


@dataclass(frozen=True)
class Migration:
    """One append-only step of a component's schema; never edit a released one, add a new one.

    ``run`` (optional) is called after the statements, for a step that depends on what the store
    holds or on the mode (single server or cluster). It must be idempotent: the step is recorded
    as applied only once it returns, so a crash in between runs it again.
    """

    version: int
    name: str
    objects: tuple[TableSpec | ViewSpec | str, ...] = field(default_factory=tuple)
    run: Callable[[Storage], None] | None = None

    def statements(self, ctx: SchemaContext) -> list[str]:
        out: list[str] = []
        for obj in self.objects:
            if isinstance(obj, str):
                out.append(obj.replace("{db}", f"`{ctx.database}`").replace("{on_cluster}", ctx.on_cluster))
            else:
                out.extend(obj.render(ctx))
        return out


# ---------------------------------------------------------------------------------------------
# Telemetry tables (component "core").
# ---------------------------------------------------------------------------------------------

_ATTR = "Map(LowCardinality(String), String) CODEC(ZSTD(1))"
_INGEST_COLS = """
    IngestEncoding LowCardinality(String) CODEC(ZSTD(1)),
    IngestTransport LowCardinality(String) CODEC(ZSTD(1))"""

TRACES = TableSpec(
    name="otel_traces",
    columns=f"""
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes {_ATTR},
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes {_ATTR},
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    TraceFlags UInt32 CODEC(ZSTD(1)),
    DroppedAttributesCount UInt32 CODEC(ZSTD(1)),
    DroppedEventsCount UInt32 CODEC(ZSTD(1)),
    DroppedLinksCount UInt32 CODEC(ZSTD(1)),
    ScopeAttributes {_ATTR},
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),{_INGEST_COLS},
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1""",
    partition_by="toDate(Timestamp)",
    order_by="(ServiceName, SpanName, toDateTime(Timestamp))",
    ttl="toDateTime(Timestamp)",
    sharding_key="cityHash64(TraceId)",
)

TRACE_ID_TS = TableSpec(
    name="otel_traces_trace_id_ts",
    columns="""
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1""",
    partition_by="toDate(Start)",
    order_by="(TraceId, Start)",
    ttl="Start",
    sharding_key="cityHash64(TraceId)",
)

TRACE_ID_TS_MV = ViewSpec(
    name="otel_traces_trace_id_ts_mv",
    source="otel_traces",
    target="otel_traces_trace_id_ts",
    select="""
SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM {source}
WHERE TraceId != ''
GROUP BY TraceId""",
)

LOGS = TableSpec(
    name="otel_logs",
    columns=f"""
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    ObservedTimestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes {_ATTR},
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes {_ATTR},
    LogAttributes {_ATTR},
    EventName String CODEC(ZSTD(1)),
    DroppedAttributesCount UInt32 CODEC(ZSTD(1)),{_INGEST_COLS},
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8""",
    partition_by="toDate(Timestamp)",
    # contrib v0.151.0+ key; TimestampTime is kept as a DEFAULT column so Grafana's OTel
    # mode works with both its 1.29.0 (FilterTime = TimestampTime) and 1.30.0 mappings.
    order_by="(toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)",
    ttl="toDateTime(Timestamp)",
)

_METRIC_HEAD = f"""
    ResourceAttributes {_ATTR},
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes {_ATTR},
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName String CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes {_ATTR},
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),"""

_EXEMPLARS = """
    Exemplars Nested (
        FilteredAttributes Map(LowCardinality(String), String),
        TimeUnix DateTime64(9),
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),"""

_METRIC_TAIL = f"""{_INGEST_COLS},
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1"""


def _metric_table(suffix: str, value_columns: str) -> TableSpec:
    return TableSpec(
        name=f"otel_metrics_{suffix}",
        columns=_METRIC_HEAD + value_columns + _METRIC_TAIL,
        partition_by="toDate(TimeUnix)",
        order_by="(ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))",
        ttl="toDateTime(TimeUnix)",
        # Map columns in the sorting key need this on recent ClickHouse releases.
        settings="index_granularity = 8192, allow_suspicious_low_cardinality_types = 1",
    )


METRICS_GAUGE = _metric_table(
    "gauge",
    """
    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),"""
    + _EXEMPLARS,
)
METRICS_SUM = _metric_table(
    "sum",
    """
    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),"""
    + _EXEMPLARS
    + """
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    IsMonotonic Boolean CODEC(Delta, ZSTD(1)),""",
)
METRICS_HISTOGRAM = _metric_table(
    "histogram",
    """
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),"""
    + _EXEMPLARS
    + """
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),""",
)
METRICS_EXP_HISTOGRAM = _metric_table(
    "exponential_histogram",
    """
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    Scale Int32 CODEC(ZSTD(1)),
    ZeroCount UInt64 CODEC(ZSTD(1)),
    PositiveOffset Int32 CODEC(ZSTD(1)),
    PositiveBucketCounts Array(UInt64) CODEC(ZSTD(1)),
    NegativeOffset Int32 CODEC(ZSTD(1)),
    NegativeBucketCounts Array(UInt64) CODEC(ZSTD(1)),"""
    + _EXEMPLARS
    + """
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),""",
)
METRICS_SUMMARY = _metric_table(
    "summary",
    """
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    ValueAtQuantiles Nested (
        Quantile Float64,
        Value Float64
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),""",
)

METRIC_TABLES = {
    "gauge": METRICS_GAUGE,
    "sum": METRICS_SUM,
    "histogram": METRICS_HISTOGRAM,
    "exponential_histogram": METRICS_EXP_HISTOGRAM,
    "summary": METRICS_SUMMARY,
}

# Tables whose TTL follows ``storage.ttl_days`` (re-applied at start when it changes).
TTL_TABLES: tuple[TableSpec, ...] = (TRACES, TRACE_ID_TS, LOGS, *METRIC_TABLES.values())

CORE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "telemetry tables (contrib ClickHouse exporter schema + ingest encoding/transport)",
        (TRACES, TRACE_ID_TS, TRACE_ID_TS_MV, LOGS, *METRIC_TABLES.values()),
    ),
)

MIGRATIONS_TABLE = "otel_ai_schema_migrations"

_NESTED = re.compile(r"^(\w+) Nested \($")
_COMPUTED = re.compile(r"\b(DEFAULT|MATERIALIZED|ALIAS|EPHEMERAL)\b")


def insert_columns(spec: TableSpec) -> tuple[str, ...]:
    """The columns an INSERT writes, in DDL order, read from ``spec.columns``.

    ``Nested`` columns expand to their ``Parent.Child`` arrays; computed columns (``DEFAULT``,
    ``MATERIALIZED``...) and ``INDEX`` lines are left out. Every decoder writes this order, so
    the DDL is the one definition of a table's columns.
    """
    out: list[str] = []
    parent: str | None = None
    for line in (raw.strip() for raw in spec.columns.splitlines()):
        if not line or line.startswith("INDEX "):
            continue
        if parent is not None:
            if line.startswith(")"):
                parent = None
            else:
                out.append(f"{parent}.{line.split()[0]}")
            continue
        nested = _NESTED.match(line)
        if nested:
            parent = nested.group(1)
        elif not _COMPUTED.search(line):
            out.append(line.split()[0])
    return tuple(out)


TRACE_COLUMNS = insert_columns(TRACES)
LOG_COLUMNS = insert_columns(LOGS)
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {kind: insert_columns(t) for kind, t in METRIC_TABLES.items()}
