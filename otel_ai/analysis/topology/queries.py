"""Named, parameterised SQL for topology discovery over a closed window ``[start, end)``.

Edges pair a child span with its parent span (same trace, ``ParentSpanId = SpanId``) or, for
CONSUMER spans, with the span each link points at (``Links.TraceId``/``Links.SpanId``). Jaeger's
rule, not the servicegraph connector's: any parent in another service makes an edge, so root
spans count as parents and no client/server pairing TTL exists.

Why the join looks the way it does: the seed's ``t1 JOIN t2`` on full rows ran out of memory at
3M spans. Here both sides are narrow projections keyed by ``cityHash64(TraceId, SpanId)`` (one
UInt64 instead of two strings), the attribute map is read only for CLIENT/PRODUCER spans (they
name virtual peers and the connection kind), and the span-link side reads ``Links.*`` only for
CONSUMER spans. The served queries go one step further and read the span index
(``otel_ai_topology_spans``: hashed keys, resolved peer names, ordered by time), about half the
bytes and half the time of the same join over ``otel_traces`` (the ``*_RAW`` variants, kept for
the benchmark). A 64-bit key over the spans of one window collides with probability ~n²/2⁶⁵
(≈3·10⁻⁶ at 10M spans); a collision can add at most one call to one edge.

A parent may start before the window while its child starts inside it (a long client span);
the parent side therefore looks ``pair_margin`` further back. Calls are counted by the child's
(or, for virtual peers, the client span's) start time, so adjacent windows never count a call twice.
"""

from __future__ import annotations

# A span is a request entry point of its service: server/consumer spans and trace roots.
ENTRY = "(SpanKind IN ('Server', 'Consumer') OR ParentSpanId = '')"

# The per-minute tables' rows from otel_traces (the span ingest job's and the old views' SELECT).
MINUTE_SPANS_COLS = (
    "toStartOfMinute(Timestamp) AS minute, ServiceName AS service, IngestEncoding AS encoding,"
    " IngestTransport AS transport, count() AS spans"
)
OPS_COLS = f"""
    toStartOfMinute(Timestamp) AS minute, ServiceName AS service, SpanName AS name,
    any(SpanKind) AS kind, count() AS spans, countIf(StatusCode = 'Error') AS errors,
    countIf({ENTRY}) AS entries, countIf({ENTRY} AND StatusCode = 'Error') AS entry_errors,
    quantilesState(0.5, 0.95, 0.99)(Duration) AS q,
    quantilesStateIf(0.5, 0.95, 0.99)(Duration, {ENTRY}) AS entry_q"""

# Name of the uninstrumented peer a CLIENT/PRODUCER span talks to ('' when nothing names it).
_DB_NAME = (
    "if(SpanAttributes['db.namespace'] != '', SpanAttributes['db.namespace'], SpanAttributes['db.name'])"
)
_DEST = "SpanAttributes['messaging.destination.name']"
VIRTUAL_ID = f"""multiIf(
    SpanAttributes['peer.service'] != '', SpanAttributes['peer.service'],
    SpanAttributes['db.system'] != '',
        SpanAttributes['db.system'] || if({_DB_NAME} != '', '/' || {_DB_NAME}, ''),
    SpanAttributes['messaging.system'] != '',
        SpanAttributes['messaging.system'] || if({_DEST} != '', '/' || {_DEST}, ''),
    SpanAttributes['server.address'] != '', SpanAttributes['server.address'],
    SpanAttributes['net.peer.name'] != '', SpanAttributes['net.peer.name'],
    '')"""
VIRTUAL_KIND = """multiIf(
    SpanAttributes['db.system'] != '', 'database',
    SpanAttributes['messaging.system'] != '', 'messaging',
    'external')"""
# What kind of connection a CLIENT/PRODUCER span makes.
CONN_KIND = """multiIf(
    SpanKind = 'Producer' OR SpanAttributes['messaging.system'] != '', 'messaging',
    SpanAttributes['db.system'] != '', 'database',
    SpanAttributes['rpc.system'] != '', SpanAttributes['rpc.system'],
    SpanAttributes['http.request.method'] != '' OR SpanAttributes['http.method'] != '', 'http',
    'call')"""

_WINDOW = "Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)}"

# Which spans a query counts, and which it may pair with. The live form counts the whole window
# (head_end = tail_start = end, no listed minutes); the hybrid form (rolled-up minutes + live
# rest) counts only the partial head and tail and the minutes the rollup does not cover.
# Parents are looked for up to pair_margin earlier, children up to pair_margin later (a client
# span is a virtual-peer call only if no child in another service exists, even after the window).
_COUNTED = (
    _WINDOW + " AND (Timestamp < {head_end:DateTime64(9)} OR Timestamp >= {tail_start:DateTime64(9)}"
    " OR toStartOfMinute(Timestamp) IN {minutes:Array(DateTime)})"
)
_PAIRABLE = (
    "Timestamp >= {pair_start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)}"
    " AND (Timestamp < {head_end:DateTime64(9)} OR Timestamp >= {tail_pair_start:DateTime64(9)}"
    " OR toStartOfMinute(Timestamp) IN {pair_minutes:Array(DateTime)})"
)
_VISIBLE = (
    "Timestamp >= {start:DateTime64(9)} AND Timestamp < {child_end:DateTime64(9)}"
    " AND (Timestamp < {head_child_end:DateTime64(9)} OR Timestamp >= {tail_start:DateTime64(9)}"
    " OR toStartOfMinute(Timestamp) IN {child_minutes:Array(DateTime)})"
)

# Parent candidates: every span (roots included), attributes only where they matter.
_PARENTS = f"""
    SELECT cityHash64(TraceId, SpanId) AS k, ServiceName AS svc, SpanKind AS kind, Duration AS dur,
           StatusCode = 'Error' AS err, {_COUNTED} AS counted, toStartOfMinute(Timestamp) AS pmin,
           '' AS vid, '' AS vkind, '' AS conn, '' AS dest
    FROM {{db:Identifier}}.otel_traces
    PREWHERE {_PAIRABLE} AND SpanKind NOT IN ('Client', 'Producer')
    UNION ALL
    SELECT cityHash64(TraceId, SpanId), ServiceName, SpanKind, Duration, StatusCode = 'Error',
           {_COUNTED}, toStartOfMinute(Timestamp), {VIRTUAL_ID}, {VIRTUAL_KIND}, {CONN_KIND},
           if(SpanAttributes['messaging.system'] != '',
              SpanAttributes['messaging.system'] || if({_DEST} != '', '/' || {_DEST}, ''), '')
    FROM {{db:Identifier}}.otel_traces
    PREWHERE {_PAIRABLE} AND SpanKind IN ('Client', 'Producer')"""

# Children: spans with a parent id, plus one row per link of a CONSUMER span (unless the link
# repeats the parent, which the first branch already pairs).
_CHILDREN = f"""
    SELECT cityHash64(TraceId, ParentSpanId) AS pk, cityHash64(TraceId, SpanId) AS csk,
           ServiceName AS csvc, SpanKind AS ckind,
           Duration AS cdur, StatusCode = 'Error' AS cerr, 'parent' AS via,
           toStartOfMinute(Timestamp) AS cmin, {_COUNTED} AS ccounted
    FROM {{db:Identifier}}.otel_traces
    PREWHERE {_VISIBLE} AND ParentSpanId != ''
    UNION ALL
    SELECT cityHash64(l.1, l.2), cityHash64(TraceId, SpanId), ServiceName, SpanKind, Duration,
           StatusCode = 'Error', 'link',
           toStartOfMinute(Timestamp), {_COUNTED}
    FROM {{db:Identifier}}.otel_traces
    ARRAY JOIN arrayZip(Links.TraceId, Links.SpanId) AS l
    PREWHERE {_VISIBLE} AND SpanKind = 'Consumer' AND notEmpty(Links.SpanId)
    WHERE NOT (l.1 = TraceId AND l.2 = ParentSpanId)"""

# The span index (``otel_ai_topology_spans``, filled by the ingest job): per span only what pairing
# needs, with the keys hashed and the peer attributes resolved once, ordered by time. The join
# then reads a few fixed-width columns instead of two id strings and an attribute map.
_DEST_ID = (
    f"if(SpanAttributes['messaging.system'] != '',"
    f" SpanAttributes['messaging.system'] || if({_DEST} != '', '/' || {_DEST}, ''), '')"
)
_CLIENT = "SpanKind IN ('Client', 'Producer')"
SPAN_INDEX_SELECT = f"""
    Timestamp, cityHash64(TraceId, SpanId) AS k,
    if(ParentSpanId = '', 0, cityHash64(TraceId, ParentSpanId)) AS pk,
    if(SpanKind = 'Consumer',
       arrayFilter(h -> h != cityHash64(TraceId, ParentSpanId),
                   arrayMap((t, s) -> cityHash64(t, s), Links.TraceId, Links.SpanId)),
       []) AS lks,
    ServiceName AS svc, SpanKind AS kind, Duration AS dur, StatusCode = 'Error' AS err,
    if({_CLIENT}, {VIRTUAL_ID}, '') AS vid, if({_CLIENT}, {VIRTUAL_KIND}, '') AS vkind,
    if({_CLIENT}, {CONN_KIND}, '') AS conn, if({_CLIENT}, {_DEST_ID}, '') AS dest"""

# The rows of otel_traces the span ingest job has not copied into the index and rollups yet:
# block number past the watermark (otel_ai/analysis/topology/ingest.py). A part's name ends in
# ``_<min block>_<max block>_<level>``: the first condition prunes whole parts, so this reads
# only the parts written (or merged) since the last run.
FRESH = "toUInt64(splitByChar('_', _part)[3]) > {wm:UInt64} AND _block_number > {wm:UInt64}"
# The index's columns computed from otel_traces: all of them for the parent side, only the keys
# and figures for the child side (the peer-name expressions are what the query planner spends
# its time on: ~20 ms per copy).
_FRESH_FULL = "SELECT " + SPAN_INDEX_SELECT + " FROM {db:Identifier}.otel_traces PREWHERE " + FRESH
_FRESH_KEYS = (
    "SELECT Timestamp, cityHash64(TraceId, SpanId) AS k, ServiceName AS svc, SpanKind AS kind,"
    " Duration AS dur, StatusCode = 'Error' AS err, {extra} FROM {{db:Identifier}}.otel_traces"
    " PREWHERE " + FRESH.replace("{", "{{").replace("}", "}}") + "{where}"
)
_FRESH_BY_PARENT = _FRESH_KEYS.format(
    extra="if(ParentSpanId = '', 0, cityHash64(TraceId, ParentSpanId)) AS pk", where=" AND ParentSpanId != ''"
)
_FRESH_BY_LINK = _FRESH_KEYS.format(
    extra="arrayFilter(h -> h != cityHash64(TraceId, ParentSpanId),"
    " arrayMap((t, s) -> cityHash64(t, s), Links.TraceId, Links.SpanId)) AS lks",
    where=" AND SpanKind = 'Consumer' AND notEmpty(Links.SpanId)",
)


def _spans(select: str, where: str, *, job: bool, array_join: str = "", fresh: str = _FRESH_FULL) -> str:
    """``SELECT select`` over the span index (``where`` as PREWHERE). In job mode: only the rows
    the job committed (``blk`` up to the watermark), plus the same projection computed from the
    rows of otel_traces past it, so a query sees every stored span exactly once whenever it runs
    (a batch being written, or left half-written by a crash, lies past the watermark)."""
    idx = f"SELECT {select} FROM {{db:Identifier}}.otel_ai_topology_spans {array_join} PREWHERE {where}"
    if not job:
        return idx
    from_fresh = f"SELECT {select} FROM ({fresh}) {array_join} WHERE {where}"
    return f"{idx} AND blk <= {{wm:UInt64}}\n    UNION ALL\n    {from_fresh}"


def _parents_idx(job: bool) -> str:
    cols = (
        f"k, svc, kind, dur, err, {_COUNTED} AS counted, toStartOfMinute(Timestamp) AS pmin,"
        " vid, vkind, conn, dest"
    )
    return _spans(cols, _PAIRABLE, job=job)


def _children_idx(job: bool) -> str:
    by_parent = (
        "pk, k AS csk, svc AS csvc, kind AS ckind, dur AS cdur, err AS cerr, 'parent' AS via,"
        f" toStartOfMinute(Timestamp) AS cmin, {_COUNTED} AS ccounted"
    )
    by_link = f"lk, k, svc, kind, dur, err, 'link', toStartOfMinute(Timestamp), {_COUNTED}"
    return (
        _spans(by_parent, f"{_VISIBLE} AND pk != 0", job=job, fresh=_FRESH_BY_PARENT)
        + "\n    UNION ALL\n    "
        + _spans(
            by_link,
            f"{_VISIBLE} AND notEmpty(lks)",
            job=job,
            array_join="ARRAY JOIN lks AS lk",
            fresh=_FRESH_BY_LINK,
        )
    )


# Unmatched LEFT JOIN rows carry key 0 (join_use_nulls = 0).
EDGE_SETTINGS: dict[str, int | str] = {"join_use_nulls": 0, "join_algorithm": "parallel_hash,hash"}


def edge_settings(join_memory_mib: int) -> dict[str, int | str]:
    """Settings of the pairing join, its in-memory side bounded to ``join_memory_mib``.

    The join holds the window's child spans in a hash table: ~110 bytes per span, so a
    5-minute window of 4M spans needed ~470 MiB. ``grace_hash`` keeps the table under
    ``max_bytes_in_join`` by splitting it into more buckets, spilled to the engine's temporary
    disk, as it grows — the same answer, at about twice the CPU once it splits (below the limit it
    is one in-memory bucket). 0 = no bound: the parallel hash join, fastest, memory growing with
    the window.
    """
    if join_memory_mib <= 0:
        return dict(EDGE_SETTINGS)
    return {**EDGE_SETTINGS, "join_algorithm": "grace_hash", "max_bytes_in_join": join_memory_mib * 2**20}


Q3 = "0.5, 0.95, 0.99"
_EDGE_KEYS = """
    p.svc AS source,
    if(c.pk = 0, p.vid, c.csvc) AS target,
    if(c.pk = 0, p.vkind, 'service') AS target_kind,
    multiIf(c.pk = 0, p.conn, c.via = 'link' OR c.ckind = 'Consumer', 'messaging',
            p.conn != '', p.conn, 'call') AS kind"""
# Counts are of distinct (parent span, child span) pairs: at-least-once delivery may store a span
# twice (at-least-once: docs/decisions/0004-at-least-once.md), and k copies of a parent joined to k of its child would otherwise
# count k² calls. Copies share their timestamp, so they always meet in the same window and minute.
_EDGE_FIGURES = f"""
    any(dest) AS destination,
    uniqExact(pair) AS call_count,
    uniqExactIf(pair, err) AS error_count,
    quantilesState({Q3})(sdur) AS server_qs,
    uniqExactIf(pair, is_client) AS client_count,
    quantilesStateIf({Q3})(cdur, is_client) AS client_qs,
    uniqExactIf(pair, by_link) AS via_links"""


# One row per joined (parent span, child span), or per client span calling a virtual peer.
def _pairs(parents: str, children: str) -> str:
    return f"""
    SELECT {_EDGE_KEYS}, if(c.pk = 0, p.pmin, c.cmin) AS minute, p.dest AS dest,
           if(c.pk = 0, p.err, c.cerr) AS err, if(c.pk = 0, p.dur, c.cdur) AS sdur,
           p.kind IN ('Client', 'Producer') AS is_client, p.dur AS cdur,
           c.via = 'link' AS by_link, cityHash64(p.k, c.csk) AS pair
    FROM ({parents}) AS p
    LEFT JOIN ({children}) AS c ON p.k = c.pk
    WHERE (c.pk != 0 AND c.ccounted AND p.svc != c.csvc) OR (c.pk = 0 AND p.vid != '' AND p.counted)"""


def _edge_queries(pairs: str) -> tuple[str, str, str]:
    """(live partials, per-minute rollup insert, final figures) over one pairing source."""
    live = f"""
SELECT source, target, target_kind, kind,{_EDGE_FIGURES}
FROM ({pairs})
GROUP BY source, target, target_kind, kind"""
    by_minute = f"""
INSERT INTO {{db:Identifier}}.otel_ai_topology_edges_1m
SELECT {{version:UInt64}} AS version, minute, source, target, target_kind, kind,{_EDGE_FIGURES}
FROM ({pairs})
GROUP BY minute, source, target, target_kind, kind"""
    # Rolled-up minutes (latest version of each) merged with the live part. The second grouping
    # set (kind = '') merges all calls into each target: a virtual node's RED.
    final = f"""
SELECT source, target, target_kind, kind, any(destination) AS destination,
       sum(call_count) AS call_count, sum(error_count) AS error_count,
       quantilesMerge({Q3})(server_qs) AS server_q, sum(client_count) AS client_count,
       quantilesMerge({Q3})(client_qs) AS client_q, sum(via_links) AS via_links
FROM (
    SELECT source, target, target_kind, kind, destination, call_count, error_count, server_qs,
           client_count, client_qs, via_links
    FROM {{db:Identifier}}.otel_ai_topology_edges_1m
    WHERE minute >= {{r_lo:DateTime}} AND minute < {{r_hi:DateTime}}
      AND minute NOT IN {{minutes:Array(DateTime)}}
      AND (minute, version) IN (
          SELECT minute, max(version) FROM {{db:Identifier}}.otel_ai_topology_rollup
          WHERE minute >= {{r_lo:DateTime}} AND minute < {{r_hi:DateTime}} GROUP BY minute)
    UNION ALL
    {live}
)
GROUP BY GROUPING SETS ((source, target, target_kind, kind), (target, target_kind))
ORDER BY source, target, kind
"""
    return live, by_minute, final


# Served queries pair over the span index; the *_RAW variants pair over otel_traces directly
# (same results; bench/topology.py times both). The *_VIEWS variants are for a store whose
# index is filled by insert-time views (cluster mode): no watermark.
EDGES_LIVE, EDGES_BY_MINUTE, EDGES_SQL = _edge_queries(_pairs(_parents_idx(True), _children_idx(True)))
EDGES_LIVE_VIEWS, EDGES_BY_MINUTE_VIEWS, EDGES_SQL_VIEWS = _edge_queries(
    _pairs(_parents_idx(False), _children_idx(False))
)
EDGES_LIVE_RAW, EDGES_BY_MINUTE_RAW, EDGES_SQL_RAW = _edge_queries(_pairs(_PARENTS, _CHILDREN))


# Spans per minute as the pairing join sees them, and what each rollup saw. Counted from the span
# index itself (plus, in job mode, the rows past the watermark), not from another table: a count
# from elsewhere could run ahead of the index and mark a minute clean that is not.
# The first span of a window (the span index is ordered by time: this reads one granule).
_RANGE = "Timestamp >= {lo:DateTime64(9)} AND Timestamp < {hi:DateTime64(9)}"
COVERED_SQL_VIEWS = f"""
SELECT min(Timestamp) FROM {{db:Identifier}}.otel_ai_topology_spans WHERE {_RANGE}
"""
COVERED_SQL = f"""
SELECT min(t) FROM (
    SELECT Timestamp AS t FROM {{db:Identifier}}.otel_ai_topology_spans
    WHERE {_RANGE} AND blk <= {{wm:UInt64}} ORDER BY Timestamp LIMIT 1
    UNION ALL
    SELECT min(Timestamp) FROM {{db:Identifier}}.otel_traces PREWHERE {FRESH} AND {_RANGE}
    HAVING count() > 0
)
"""
MINUTE_COUNTS_SQL_VIEWS = f"""
SELECT toStartOfMinute(Timestamp) AS minute, count() FROM {{db:Identifier}}.otel_ai_topology_spans
WHERE {_RANGE} GROUP BY minute
"""
MINUTE_COUNTS_SQL = f"""
SELECT minute, sum(n) FROM (
    SELECT toStartOfMinute(Timestamp) AS minute, count() AS n FROM {{db:Identifier}}.otel_ai_topology_spans
    WHERE {_RANGE} AND blk <= {{wm:UInt64}} GROUP BY minute
    UNION ALL
    SELECT toStartOfMinute(Timestamp) AS minute, count() AS n FROM {{db:Identifier}}.otel_traces
    PREWHERE {FRESH} AND {_RANGE} GROUP BY minute
)
GROUP BY minute
"""
ROLLUP_SEEN_SQL = """
SELECT minute, argMax(seen, version), max(version) FROM {db:Identifier}.otel_ai_topology_rollup
WHERE minute >= {lo:DateTime} AND minute < {hi:DateTime} GROUP BY minute
"""

# Per (service, operation) partials: whole minutes from the per-minute table (exact counts, any
# batching), the partial first/last minute live. In the pure live form mv_lo = mv_hi = end.
# In job mode the rows past the watermark are read live too, over the whole minutes.
_LIVE_PART = (
    "Timestamp >= {n_start:DateTime64(9)} AND Timestamp < {n_end:DateTime64(9)}"
    " AND (Timestamp < {mv_lo:DateTime64(9)} OR Timestamp >= {mv_hi:DateTime64(9)})"
)
_FRESH_PART = FRESH + " AND Timestamp >= {mv_lo:DateTime64(9)} AND Timestamp < {mv_hi:DateTime64(9)}"
_OPS_LIVE = f"""
    SELECT ServiceName, SpanName, any(SpanKind), count(), countIf(StatusCode = 'Error'),
           countIf({ENTRY}), countIf({ENTRY} AND StatusCode = 'Error'),
           quantilesState({Q3})(Duration), quantilesStateIf({Q3})(Duration, {ENTRY})
    FROM {{db:Identifier}}.otel_traces"""
_OPS_ROLLED = """
    SELECT service, name, kind, toUInt64(spans) AS spans, toUInt64(errors) AS errors,
           toUInt64(entries) AS entries, toUInt64(entry_errors) AS entry_errors, q, entry_q
    FROM {db:Identifier}.otel_ai_topology_ops_1m
    WHERE minute >= {mv_lo:DateTime64(9)} AND minute < {mv_hi:DateTime64(9)}"""
_INGEST_ROLLED = """
    SELECT service, encoding, transport, toUInt64(spans) AS n
    FROM {db:Identifier}.otel_ai_topology_minute_spans
    WHERE minute >= {mv_lo:DateTime64(9)} AND minute < {mv_hi:DateTime64(9)}"""
_INGEST_LIVE = """
    SELECT ServiceName, IngestEncoding, IngestTransport, count()
    FROM {db:Identifier}.otel_traces"""


def _live(select: str, group: str, job: bool) -> str:
    out = f"{select}\n    PREWHERE {_LIVE_PART}\n    GROUP BY {group}"
    if job:
        out += f"\n    UNION ALL{select}\n    PREWHERE {_FRESH_PART}\n    GROUP BY {group}"
    return out


def _nodes_sql(job: bool) -> str:
    """Per service (grouping(name) = 1) and per operation in one pass: RED of all spans and of
    entry spans (true per-second rate = entries / seconds). Top-N operations are picked in Python."""
    partials = f"{_OPS_ROLLED}\n    UNION ALL{_live(_OPS_LIVE, 'ServiceName, SpanName', job)}"
    return f"""
SELECT service, name, grouping(name) AS per_service, any(kind) AS kind,
       sum(spans) AS span_count, sum(errors) AS error_count,
       sum(entries) AS request_count, sum(entry_errors) AS request_error_count,
       quantilesMerge({Q3})(q) AS all_q, quantilesMerge({Q3})(entry_q) AS entry_q
FROM ({partials})
GROUP BY GROUPING SETS ((service, name), (service))
ORDER BY service, per_service DESC, span_count DESC, name
"""


def _ingest_sql(job: bool) -> str:
    """How each service's data arrived (encoding x transport)."""
    live = _live(_INGEST_LIVE, "ServiceName, IngestEncoding, IngestTransport", job)
    return f"""
SELECT service, encoding, transport, sum(n) AS n FROM ({_INGEST_ROLLED}
    UNION ALL{live}
)
GROUP BY service, encoding, transport
"""


NODES_SQL, NODES_SQL_VIEWS = _nodes_sql(True), _nodes_sql(False)
INGEST_SQL, INGEST_SQL_VIEWS = _ingest_sql(True), _ingest_sql(False)
