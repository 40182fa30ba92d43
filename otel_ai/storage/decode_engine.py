"""The "engine" decoder: ClickHouse decodes OTLP protobuf itself and flattens it in SQL.

DESIGN.md decision 3. The batch's request bodies are written length-delimited to one temporary
file and read with ``file(path, 'Protobuf', structure)`` using our OTLP schema
(``otel_ai/ingest/proto/otlp_clickhouse.proto``) and ``input_format_protobuf_oneof_presence=1``
(which ``AnyValue`` member is set), then ``INSERT INTO <contrib table> SELECT …`` flattens with
``ARRAY JOIN``, ``mapFromArrays`` and ``hex``. Each request gets two extra protobuf fields
appended (9001 encoding, 9002 transport — appending fields to a serialized message is valid
protobuf), so one INSERT carries mixed encodings/transports.

Values are rendered like the contrib exporter's ``AsString`` (see :mod:`decode_values`): doubles
with ClickHouse's shortest round-trip formatting, exponent fixed to Go's ``e+21`` form; arrays and
kvlists as Go-style JSON. What the SQL cannot render exactly (values nested deeper than one level,
NaN/Inf inside arrays, rare control characters inside strings in arrays) raises a marked
exception and the batch is written by the python decoder instead (counted, never lost).

Embedded chDB only: a remote server would need the ``.proto`` in its ``format_schemas``
directory, so with ``http://`` storage the writer uses the python decoder (see the docs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload

PROTO = Path(__file__).resolve().parent.parent / "ingest" / "proto" / "otlp_clickhouse.proto"
FALLBACK_MARK = "otel_ai_engine_fallback"

# -- structures (ClickHouse column types mirroring the .proto messages) ------------------------

_PRESENCE = (
    "Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, "
    "'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7)"
)
_SCALARS = "string_value String, bool_value Bool, int_value Int64, double_value Float64"
_AV1 = f"Tuple(value {_PRESENCE}, {_SCALARS}, array_value String, kvlist_value String, bytes_value String)"
_AV0 = (
    f"Tuple(value {_PRESENCE}, {_SCALARS}, array_value Tuple(values Array({_AV1})), "
    f"kvlist_value Tuple(values Array(Tuple(key String, value {_AV1}))), bytes_value String)"
)
_ATTRS = f"Array(Tuple(key String, value {_AV0}))"
_RESOURCE = f"Tuple(attributes {_ATTRS})"
_SCOPE = f"Tuple(name String, version String, attributes {_ATTRS}, dropped_attributes_count UInt32)"
_TAIL = "otel_ai_encoding String, otel_ai_transport String"

_SPAN = (
    "Tuple(trace_id String, span_id String, trace_state String, parent_span_id String, flags UInt32, "
    "name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
    f"attributes {_ATTRS}, dropped_attributes_count UInt32, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {_ATTRS})), "
    "dropped_events_count UInt32, "
    f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {_ATTRS})), "
    "dropped_links_count UInt32, status Tuple(message String, code Int32))"
)
TRACES_STRUCTURE = (
    f"resource_spans Array(Tuple(resource {_RESOURCE}, scope_spans Array(Tuple(scope {_SCOPE}, "
    f"spans Array({_SPAN}), schema_url String)), schema_url String)), {_TAIL}"
)

_LOG = (
    "Tuple(time_unix_nano UInt64, observed_time_unix_nano UInt64, severity_number Int32, "
    f"severity_text String, body {_AV0}, attributes {_ATTRS}, dropped_attributes_count UInt32, "
    "flags UInt32, trace_id String, span_id String, event_name String)"
)
LOGS_STRUCTURE = (
    f"resource_logs Array(Tuple(resource {_RESOURCE}, scope_logs Array(Tuple(scope {_SCOPE}, "
    f"log_records Array({_LOG}), schema_url String)), schema_url String)), {_TAIL}"
)

_VALUE_PRESENCE = "Enum8('none' = 0, 'as_double' = 3, 'as_int' = 6)"  # Exemplar.value
_DP_PRESENCE = "Enum8('none' = 0, 'as_double' = 4, 'as_int' = 6)"  # NumberDataPoint.value
_EXEMPLARS = (
    f"exemplars Array(Tuple(filtered_attributes {_ATTRS}, time_unix_nano UInt64, "
    f"value {_VALUE_PRESENCE}, as_double Float64, as_int Int64, span_id String, trace_id String))"
)
_HEAD = f"attributes {_ATTRS}, start_time_unix_nano UInt64, time_unix_nano UInt64"
# The presence column comes first: in the natural order ClickHouse 26.9 rejects it as a oneof
# presence indicator ("not suitable"); every other order tried works.
_NUMBER_DP = (
    f"Tuple(value {_DP_PRESENCE}, {_HEAD}, as_double Float64, as_int Int64, {_EXEMPLARS}, flags UInt32)"
)
_HIST_DP = (
    f"Tuple({_HEAD}, count UInt64, sum Float64, bucket_counts Array(UInt64), "
    f"explicit_bounds Array(Float64), {_EXEMPLARS}, flags UInt32, min Float64, max Float64)"
)
_BUCKETS = "Tuple(offset Int32, bucket_counts Array(UInt64))"
_EXP_DP = (
    f"Tuple({_HEAD}, count UInt64, sum Float64, scale Int32, zero_count UInt64, positive {_BUCKETS}, "
    f"negative {_BUCKETS}, flags UInt32, {_EXEMPLARS}, min Float64, max Float64)"
)
_SUMMARY_DP = (
    f"Tuple({_HEAD}, count UInt64, sum Float64, "
    "quantile_values Array(Tuple(quantile Float64, value Float64)), flags UInt32)"
)
_METRIC = (
    "Tuple(name String, description String, unit String, "
    f"gauge Tuple(data_points Array({_NUMBER_DP})), "
    f"sum Tuple(data_points Array({_NUMBER_DP}), aggregation_temporality Int32, is_monotonic Bool), "
    f"histogram Tuple(data_points Array({_HIST_DP}), aggregation_temporality Int32), "
    f"exponential_histogram Tuple(data_points Array({_EXP_DP}), aggregation_temporality Int32), "
    f"summary Tuple(data_points Array({_SUMMARY_DP})))"
)
METRICS_STRUCTURE = (
    f"resource_metrics Array(Tuple(resource {_RESOURCE}, scope_metrics Array(Tuple(scope {_SCOPE}, "
    f"metrics Array({_METRIC}), schema_url String)), schema_url String)), {_TAIL}"
)

# -- value rendering (contrib AsString) ---------------------------------------------------------


def _go_float(x: str) -> str:
    return (
        f"if(isNaN({x}), 'json: unsupported value: NaN', if(isInfinite({x}), "
        f"if({x} > 0, 'json: unsupported value: +Inf', 'json: unsupported value: -Inf'), "
        f"if(abs({x}) >= 1e21, replaceOne(toString({x}), 'e', 'e+'), toString({x}))))"
    )


# Characters Go's encoding/json escapes in ways a replace chain does not cover → python fallback.
_EXOTIC = "[\\\\x00-\\\\x07\\\\x0b\\\\x0e-\\\\x1f\\\\x{2028}\\\\x{2029}]"


def _json_str(s: str) -> str:
    chain = s
    for a, b in (
        ("\\\\", "\\\\\\\\"),
        ('"', '\\\\"'),
        ("\\n", "\\\\n"),
        ("\\r", "\\\\r"),
        ("\\t", "\\\\t"),
        ("\\b", "\\\\b"),
        ("\\f", "\\\\f"),
        ("<", "\\\\u003c"),
        (">", "\\\\u003e"),
        ("&", "\\\\u0026"),
    ):
        chain = f"replaceAll({chain}, '{a}', '{b}')"
    # throwIf's condition is exact, so it is correct whether or not evaluation short-circuits
    # (a constant throwIf(1) would be folded and thrown at analysis time).
    guard = (
        f"substring(toString(throwIf(match({s}, '{_EXOTIC}'), '{FALLBACK_MARK}: control character')), 1, 0)"
    )
    return f"concat({guard}, '\"', {chain}, '\"')"


def _json1(v: str) -> str:
    """JSON of a depth-1 value (inside an array or kvlist)."""
    return (
        f"multiIf({v}.value = 'string_value', {_json_str(f'{v}.string_value')}, "
        f"{v}.value = 'int_value', toString({v}.int_value), "
        f"{v}.value = 'bool_value', if({v}.bool_value, 'true', 'false'), "
        f"{v}.value = 'double_value', if(isFinite({v}.double_value), {_go_float(f'{v}.double_value')}, "
        f"toString(throwIf({v}.value = 'double_value' AND NOT isFinite({v}.double_value), "
        f"'{FALLBACK_MARK}: non-finite double in array'))), "
        f"{v}.value = 'bytes_value', concat('\"', base64Encode({v}.bytes_value), '\"'), "
        f"{v}.value = 'none', 'null', "
        f"toString(throwIf({v}.value IN ('array_value', 'kvlist_value'), "
        f"'{FALLBACK_MARK}: value nested deeper than one level')))"
    )


def any_str(v: str) -> str:
    """SQL for the contrib ``AsString`` of an ``AnyValue`` tuple expression ``v``."""
    arr = f"concat('[', arrayStringConcat(arrayMap(x -> {_json1('x')}, {v}.array_value.values), ','), ']')"
    kv = (
        "concat('{', arrayStringConcat(arrayMap(kv -> concat("
        f"{_json_str('kv.key')}, ':', {_json1('kv.value')}), "
        f"arraySort(kv -> kv.key, {v}.kvlist_value.values)), ','), '}}')"
    )
    return (
        f"multiIf({v}.value = 'string_value', {v}.string_value, "
        f"{v}.value = 'int_value', toString({v}.int_value), "
        f"{v}.value = 'bool_value', if({v}.bool_value, 'true', 'false'), "
        f"{v}.value = 'double_value', {_go_float(f'{v}.double_value')}, "
        f"{v}.value = 'bytes_value', base64Encode({v}.bytes_value), "
        f"{v}.value = 'array_value', {arr}, "
        f"{v}.value = 'kvlist_value', {kv}, '')"
    )


def attrs(a: str) -> str:
    """SQL for an attribute list → ``Map(String, String)``."""
    return f"mapFromArrays(arrayMap(kv -> kv.key, {a}), arrayMap(kv -> {any_str('kv.value')}, {a}))"


def _svc(a: str) -> str:
    return f"arrayFirst(kv -> kv.key = 'service.name', {a}).value.string_value"


def _ts(x: str) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({x}))"


_HEX_ID = "lower(hex({}))"


def _hex(x: str) -> str:
    return _HEX_ID.format(x)


# -- flatten SELECTs (the FROM is ``{src}``: the file() table function over the batch) --------

_SCOPE_LEVEL = (
    "{rattrs} AS r_attrs, {svc} AS svc, rs.schema_url AS r_url, ss.scope.name AS s_name, "
    "ss.scope.version AS s_version, {sattrs} AS s_attrs, ss.scope.dropped_attributes_count AS s_dropped, "
    "ss.schema_url AS s_url, otel_ai_encoding AS enc, otel_ai_transport AS tr"
)


def _scope_level(top: str, scope: str, leaves: str) -> str:
    cols = _SCOPE_LEVEL.format(
        rattrs=attrs("rs.resource.attributes"),
        svc="arrayFirst(kv -> kv.key = 'service.name', rs.resource.attributes).value",
        sattrs=attrs("ss.scope.attributes"),
    )
    return f"SELECT {cols}, ss.{leaves} AS leaves FROM {{src}} ARRAY JOIN {top} AS rs ARRAY JOIN rs.{scope} AS ss"


_SPAN_KIND = "['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer']"
_STATUS = "['Unset', 'Ok', 'Error']"

TRACES_SQL = f"""
INSERT INTO {{db}}.otel_traces (
    Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
    `Events.Timestamp`, `Events.Name`, `Events.Attributes`,
    `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`,
    TraceFlags, DroppedAttributesCount, DroppedEventsCount, DroppedLinksCount, ScopeAttributes,
    ResourceSchemaUrl, ScopeSchemaUrl, IngestEncoding, IngestTransport)
SELECT
    {_ts("sp.start_time_unix_nano")}, {_hex("sp.trace_id")}, {_hex("sp.span_id")},
    {_hex("sp.parent_span_id")}, sp.trace_state, sp.name,
    if(sp.kind BETWEEN 0 AND 5, {_SPAN_KIND}[sp.kind + 1], 'Unspecified'),
    {any_str("svc")}, r_attrs, s_name, s_version, {attrs("sp.attributes")},
    if(sp.end_time_unix_nano > sp.start_time_unix_nano, sp.end_time_unix_nano - sp.start_time_unix_nano, 0),
    if(sp.status.code BETWEEN 0 AND 2, {_STATUS}[sp.status.code + 1], 'Unset'), sp.status.message,
    arrayMap(e -> {_ts("e.time_unix_nano")}, sp.events), arrayMap(e -> e.name, sp.events),
    arrayMap(e -> {attrs("e.attributes")}, sp.events),
    arrayMap(l -> {_hex("l.trace_id")}, sp.links), arrayMap(l -> {_hex("l.span_id")}, sp.links),
    arrayMap(l -> l.trace_state, sp.links), arrayMap(l -> {attrs("l.attributes")}, sp.links),
    sp.flags, sp.dropped_attributes_count, sp.dropped_events_count, sp.dropped_links_count, s_attrs,
    r_url, s_url, enc, tr
FROM ({_scope_level("resource_spans", "scope_spans", "spans")})
ARRAY JOIN leaves AS sp
"""

LOGS_SQL = f"""
INSERT INTO {{db}}.otel_logs (
    Timestamp, ObservedTimestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber,
    ServiceName, Body, ResourceSchemaUrl, ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion,
    ScopeAttributes, LogAttributes, EventName, DroppedAttributesCount, IngestEncoding, IngestTransport)
SELECT
    {_ts("if(lr.time_unix_nano = 0, lr.observed_time_unix_nano, lr.time_unix_nano)")},
    {_ts("lr.observed_time_unix_nano")}, {_hex("lr.trace_id")}, {_hex("lr.span_id")},
    bitAnd(lr.flags, 255), lr.severity_text, bitAnd(lr.severity_number, 255), {any_str("svc")},
    {any_str("lr.body")}, r_url, r_attrs, s_url, s_name, s_version, s_attrs, {attrs("lr.attributes")},
    lr.event_name, lr.dropped_attributes_count, enc, tr
FROM ({_scope_level("resource_logs", "scope_logs", "log_records")})
ARRAY JOIN leaves AS lr
"""

_M_HEAD_COLS = (
    "ResourceAttributes, ResourceSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, "
    "ScopeDroppedAttrCount, ScopeSchemaUrl, ServiceName, MetricName, MetricDescription, MetricUnit, "
    "Attributes, StartTimeUnix, TimeUnix"
)
_M_HEAD = (
    f"r_attrs, r_url, s_name, s_version, s_attrs, s_dropped, s_url, {any_str('svc')}, "
    f"m.name, m.description, m.unit, {attrs('dp.attributes')}, "
    f"{_ts('dp.start_time_unix_nano')}, {_ts('dp.time_unix_nano')}"
)
_EX_COLS = (
    "`Exemplars.FilteredAttributes`, `Exemplars.TimeUnix`, `Exemplars.Value`, `Exemplars.SpanId`, "
    "`Exemplars.TraceId`"
)
_EX = (
    f"arrayMap(x -> {attrs('x.filtered_attributes')}, dp.exemplars), "
    f"arrayMap(x -> {_ts('x.time_unix_nano')}, dp.exemplars), "
    "arrayMap(x -> if(x.value = 'as_int', toFloat64(x.as_int), x.as_double), dp.exemplars), "
    f"arrayMap(x -> {_hex('x.span_id')}, dp.exemplars), arrayMap(x -> {_hex('x.trace_id')}, dp.exemplars)"
)
_NUM = "if(dp.value = 'as_int', toFloat64(dp.as_int), dp.as_double)"
_METRIC_POINTS = {
    "gauge": ("gauge", f"Value, Flags, {_EX_COLS}", f"{_NUM}, dp.flags, {_EX}"),
    "sum": (
        "sum",
        f"Value, Flags, {_EX_COLS}, AggregationTemporality, IsMonotonic",
        f"{_NUM}, dp.flags, {_EX}, m.sum.aggregation_temporality, m.sum.is_monotonic",
    ),
    "histogram": (
        "histogram",
        f"Count, Sum, BucketCounts, ExplicitBounds, {_EX_COLS}, Flags, Min, Max, AggregationTemporality",
        "dp.count, dp.sum, dp.bucket_counts, dp.explicit_bounds, "
        f"{_EX}, dp.flags, dp.min, dp.max, m.histogram.aggregation_temporality",
    ),
    "exponential_histogram": (
        "exponential_histogram",
        "Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, "
        f"NegativeBucketCounts, {_EX_COLS}, Flags, Min, Max, AggregationTemporality",
        "dp.count, dp.sum, dp.scale, dp.zero_count, dp.positive.offset, dp.positive.bucket_counts, "
        f"dp.negative.offset, dp.negative.bucket_counts, {_EX}, dp.flags, dp.min, dp.max, "
        "m.exponential_histogram.aggregation_temporality",
    ),
    "summary": (
        "summary",
        "Count, Sum, `ValueAtQuantiles.Quantile`, `ValueAtQuantiles.Value`, Flags",
        "dp.count, dp.sum, arrayMap(q -> q.quantile, dp.quantile_values), "
        "arrayMap(q -> q.value, dp.quantile_values), dp.flags",
    ),
}


def _metric_sql(kind: str) -> str:
    field, cols, values = _METRIC_POINTS[kind]
    scope = _scope_level("resource_metrics", "scope_metrics", "metrics")
    return f"""
INSERT INTO {{db}}.otel_metrics_{kind} ({_M_HEAD_COLS}, {cols}, IngestEncoding, IngestTransport)
SELECT {_M_HEAD}, {values}, enc, tr
FROM ({scope})
ARRAY JOIN leaves AS m
ARRAY JOIN m.{field}.data_points AS dp
"""


METRICS_SQL = {kind: _metric_sql(kind) for kind in _METRIC_POINTS}


# -- the decoder ----------------------------------------------------------------------------

_MESSAGES = {"traces": "TracesRequest", "logs": "LogsRequest", "metrics": "MetricsRequest"}
_STRUCTURES = {"traces": TRACES_STRUCTURE, "logs": LOGS_STRUCTURE, "metrics": METRICS_STRUCTURE}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string_field(number: int, value: str) -> bytes:
    data = value.encode()
    return _varint(number << 3 | 2) + _varint(len(data)) + data


_TAGS = {
    (enc, tr): _string_field(9001, enc) + _string_field(9002, tr)
    for enc in ("protobuf", "json")
    for tr in ("grpc", "http")
}


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class EngineFallback(Exception):
    """The SQL met a value it cannot render exactly; the batch goes through the python decoder."""


class EngineDecoder:
    """Inserts protobuf payloads by letting ClickHouse decode them (embedded chDB)."""

    def __init__(self, storage: Any, *, tmp_dir: str | None = None, streams: int | None = None) -> None:
        self.storage = storage
        self.streams = streams or max(1, min(4, os.cpu_count() or 1))
        self.tmp_dir = tmp_dir
        self.fallbacks = 0
        self.settings = {
            "format_schema": "",  # set per signal
            "input_format_protobuf_oneof_presence": 1,
            "input_format_defaults_for_omitted_fields": 1,
        }

    def write(self, payloads: Sequence[Payload]) -> None:
        from otel_ai.storage.writer import write_python

        proto = [p for p in payloads if p.encoding == "protobuf"]
        other = [p for p in payloads if p.encoding != "protobuf"]
        if other:
            write_python(self.storage, other)
        if not proto:
            return
        try:
            self.insert_protobuf(proto)
        except EngineFallback:
            self.fallbacks += 1
            write_python(self.storage, proto)

    def insert_protobuf(self, payloads: Sequence[Payload]) -> None:
        """Length-delimited files of the batch, one INSERT … SELECT per target table.

        The batch is split over ``streams`` files read through one glob, so ClickHouse parses
        and flattens them on several threads (the Protobuf format itself parses one file on one
        thread).
        """
        signal = payloads[0].signal
        workdir = tempfile.mkdtemp(prefix="otel-ai-batch-", dir=self.tmp_dir)
        try:
            streams = max(1, min(self.streams, len(payloads)))
            for k in range(streams):
                with open(os.path.join(workdir, f"{k}.pb"), "wb") as fh:
                    for p in payloads[k::streams]:
                        tag = _TAGS[(p.encoding, p.transport)]
                        fh.write(_varint(len(p.body) + len(tag)))
                        fh.write(p.body)
                        fh.write(tag)
            glob = os.path.join(workdir, "*.pb")
            src = f"file({_quote(glob)}, 'Protobuf', {_quote(_STRUCTURES[signal])})"
            settings = dict(self.settings, format_schema=f"{PROTO}:{_MESSAGES[signal]}")
            db = f"`{self.storage.database}`"
            if signal == "traces":
                statements = [TRACES_SQL]
            elif signal == "logs":
                statements = [LOGS_SQL]
            else:
                statements = list(METRICS_SQL.values())
            for sql in statements:
                self._run(sql.replace("{db}", db).replace("{src}", src), settings)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, sql: str, settings: dict[str, Any]) -> None:
        try:
            self.storage.command(sql, settings=settings)
        except StorageError as exc:
            if FALLBACK_MARK in exc.message:
                raise EngineFallback(exc.message) from exc
            if exc.retryable:
                raise
            raise DecodeError(f"the engine decoder rejected the batch: {exc.message}") from exc
