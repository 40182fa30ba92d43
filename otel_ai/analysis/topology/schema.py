"""Tables of the topology component (``storage.apply_migrations("topology", MIGRATIONS)``).

- ``otel_ai_topology_minute_spans``: spans per minute x service x encoding x transport (sums are
  exact whatever the batches look like).
- ``otel_ai_topology_ops_1m``: RED partials per minute x service x operation (node figures never
  need the join, so they are exact per minute whatever the batching).
- ``otel_ai_topology_edges_1m`` + ``otel_ai_topology_rollup``: edge partials per minute
  (aggregate states), computed by the rollup job with the same join as live queries; each
  recomputation writes a new ``version`` and a minute is read at its latest version only. Each
  rollup records how many index spans it saw around the minute; a minute whose count changed
  since (late spans, backfill, replays) is computed live until the next run recomputes it, so a
  window still filling is never frozen (the seed's ``NOT IN`` bug, seed_repo.md §3).
- ``otel_ai_topology``: topology snapshots (JSON body) for comparing windows later.
- ``otel_ai_topology_spans`` (migration 2): the span index the pairing join reads, one row per
  span. These three were filled by materialized views at insert time until migration 3.
- ``otel_ai_topology_ingest`` (migration 3): the span ingest job's watermark. The three views
  are dropped and the job writes the same rows in batches, off the insert path (ingest.py);
  a cluster keeps the views.
"""

from __future__ import annotations

from otel_ai.analysis.topology.ingest import STATE, adopt
from otel_ai.analysis.topology.queries import MINUTE_SPANS_COLS, OPS_COLS, SPAN_INDEX_SELECT
from otel_ai.storage.schema import Migration, TableSpec, ViewSpec

_Q = "AggregateFunction(quantiles(0.5, 0.95, 0.99), UInt64)"

MINUTE_SPANS = TableSpec(
    name="otel_ai_topology_minute_spans",
    columns="""
    minute DateTime,
    service LowCardinality(String),
    encoding LowCardinality(String),
    transport LowCardinality(String),
    spans UInt64""",
    engine="SummingMergeTree(spans)",
    order_by="(minute, service, encoding, transport)",
    partition_by="toDate(minute)",
    ttl="minute",
)
MINUTE_SPANS_MV = ViewSpec(
    name="otel_ai_topology_minute_spans_mv",
    source="otel_traces",
    target="otel_ai_topology_minute_spans",
    select=f"SELECT {MINUTE_SPANS_COLS} FROM {{source}} GROUP BY minute, service, encoding, transport",
)
# Spans stored before the view existed are counted once, at migration time.
BACKFILL_MINUTE_SPANS = (
    f"INSERT INTO {{db}}.otel_ai_topology_minute_spans SELECT {MINUTE_SPANS_COLS}"
    " FROM {db}.otel_traces GROUP BY minute, service, encoding, transport"
)

# Per (minute, service, operation) RED partials, exact whatever the insert batches look like.
OPS_1M = TableSpec(
    name="otel_ai_topology_ops_1m",
    columns=f"""
    minute DateTime,
    service LowCardinality(String),
    name LowCardinality(String),
    kind SimpleAggregateFunction(any, LowCardinality(String)),
    spans SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    entries SimpleAggregateFunction(sum, UInt64),
    entry_errors SimpleAggregateFunction(sum, UInt64),
    q {_Q},
    entry_q {_Q}""",
    engine="AggregatingMergeTree()",
    order_by="(minute, service, name)",
    partition_by="toDate(minute)",
    ttl="minute",
)
OPS_1M_MV = ViewSpec(
    name="otel_ai_topology_ops_1m_mv",
    source="otel_traces",
    target="otel_ai_topology_ops_1m",
    select=f"SELECT {OPS_COLS} FROM {{source}} GROUP BY minute, service, name",
)
BACKFILL_OPS = (
    f"INSERT INTO {{db}}.otel_ai_topology_ops_1m SELECT {OPS_COLS}"
    " FROM {db}.otel_traces GROUP BY minute, service, name"
)

ROLLUP = TableSpec(
    name="otel_ai_topology_rollup",
    columns="minute DateTime, version UInt64, seen UInt64, computed_at DateTime64(3) DEFAULT now64(3)",
    order_by="(minute, version)",
    partition_by="toDate(minute)",
    ttl="minute",
)
EDGES_1M = TableSpec(
    name="otel_ai_topology_edges_1m",
    columns=f"""
    version UInt64,
    minute DateTime,
    source LowCardinality(String),
    target LowCardinality(String),
    target_kind LowCardinality(String),
    kind LowCardinality(String),
    destination String,
    call_count UInt64,
    error_count UInt64,
    server_qs {_Q},
    client_count UInt64,
    client_qs {_Q},
    via_links UInt64""",
    order_by="(minute, version, source, target, target_kind, kind)",
    partition_by="toDate(minute)",
    ttl="minute",
)
SNAPSHOTS = TableSpec(
    name="otel_ai_topology",
    columns="""
    taken_at DateTime64(3),
    window_start DateTime64(3),
    window_end DateTime64(3),
    node_count UInt32,
    edge_count UInt32,
    body String CODEC(ZSTD(3))""",
    order_by="taken_at",
    partition_by="toYYYYMM(taken_at)",
    ttl="toDateTime(taken_at)",
)

# What pairing needs of each span, one row per span (any batching is fine; filled by the ingest
# job since migration 3): hashed keys, resolved peer names, ordered by time so a window reads
# only its granules.
SPAN_INDEX = TableSpec(
    name="otel_ai_topology_spans",
    columns="""
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    k UInt64 CODEC(ZSTD(1)),
    pk UInt64 CODEC(ZSTD(1)),
    lks Array(UInt64) CODEC(ZSTD(1)),
    svc LowCardinality(String),
    kind LowCardinality(String),
    dur UInt64 CODEC(ZSTD(1)),
    err Bool,
    vid LowCardinality(String),
    vkind LowCardinality(String),
    conn LowCardinality(String),
    dest LowCardinality(String)""",
    order_by="Timestamp",
    partition_by="toDate(Timestamp)",
    ttl="toDateTime(Timestamp)",
    sharding_key="cityHash64(k)",
)
SPAN_INDEX_MV = ViewSpec(
    name="otel_ai_topology_spans_mv",
    source="otel_traces",
    target="otel_ai_topology_spans",
    select=f"SELECT {SPAN_INDEX_SELECT} FROM {{source}}",
)
BACKFILL_SPAN_INDEX = (
    f"INSERT INTO {{db}}.otel_ai_topology_spans SELECT {SPAN_INDEX_SELECT} FROM {{db}}.otel_traces"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "topology: spans per minute (MV), per-minute edge rollup, snapshots",
        (
            MINUTE_SPANS,
            MINUTE_SPANS_MV,
            BACKFILL_MINUTE_SPANS,
            OPS_1M,
            OPS_1M_MV,
            BACKFILL_OPS,
            ROLLUP,
            EDGES_1M,
            SNAPSHOTS,
        ),
    ),
    Migration(2, "topology: span index for pairing", (SPAN_INDEX, SPAN_INDEX_MV, BACKFILL_SPAN_INDEX)),
    # The views above leave the insert path: the span ingest job (ingest.py) fills the same
    # tables from a watermark. Cluster mode keeps them.
    Migration(3, "topology: span ingest job with a block watermark replaces the views", (STATE,), run=adopt),
)
