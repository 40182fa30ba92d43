"""SQL of the engine decoder: input structures and flatten SELECTs, for protobuf and OTLP/JSON.

One set of templates serves both wire encodings, in three "dialects":

* ``pb`` — ClickHouse's ``Protobuf`` format with ``otel_ai/otlp/proto/otlp_clickhouse.proto``;
  ``AnyValue`` presence comes from ``input_format_protobuf_oneof_presence`` (an Enum column
  named after the oneof); ids are bytes (``hex``); enums are ints.
* ``pbs`` — the same protobuf read with attribute values that are arrays or kvlists kept as raw
  bytes: the input type and the flatten expression shrink to a third, and so does the query
  analysis every INSERT pays (measured 0.15 s → 0.05 s of CPU). A statement that meets such a
  value raises ``COMPOSITE_MARK`` and is run again in ``pb`` (see :mod:`.engine`).
* ``json`` — typed ``JSONEachRow`` with nested named tuples over the OTLP/JSON body: keys are
  lowerCamelCase (the templates are written in snake_case and camelised), ``AnyValue`` members are
  ``Nullable`` (presence = not NULL), ids arrive as hex strings, enums as ints or names (read as
  strings), int64 as strings or numbers, unknown keys skipped. Values nested deeper than one level
  arrive as raw JSON text and trigger the python fallback.

Values are rendered like pdata ``Value.AsString`` (the contrib exporter); see :mod:`.values`.
"""

from __future__ import annotations

import re

from otel_ai.storage.schema import LOG_COLUMNS, METRIC_COLUMNS, TRACE_COLUMNS

FALLBACK_MARK = "otel_ai_engine_fallback"
# Raised by the scalar protobuf dialect ("pbs") when a value is an array or kvlist: the statement
# is run again in the full dialect ("pb").
COMPOSITE_MARK = "otel_ai_engine_composite"
_JSON = ("json", "jsons")
# The scalar dialect of each full one.
SCALAR = {"pb": "pbs", "json": "jsons"}

# -- input structures ---------------------------------------------------------------------------

_PRESENCE = (
    "Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, "
    "'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7)"
)


def _structures(d: str) -> dict[str, str]:
    pb = d not in _JSON
    if pb:
        scalars = "string_value String, bool_value Bool, int_value Int64, double_value Float64"
        av1 = f"Tuple(value {_PRESENCE}, {scalars}, array_value String, kvlist_value String, bytes_value String)"
        av0_head, bytes_t = f"value {_PRESENCE}, {scalars}", "String"
        enum_t = "Int32"
        num_dp = "value Enum8('none' = 0, 'as_double' = 4, 'as_int' = 6), as_double Float64, as_int Int64"
        ex_val = "value Enum8('none' = 0, 'as_double' = 3, 'as_int' = 6), as_double Float64, as_int Int64"
    else:
        scalars = (
            "string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
            "double_value Nullable(Float64)"
        )
        av1 = (
            f"Tuple({scalars}, array_value Nullable(String), kvlist_value Nullable(String), "
            "bytes_value Nullable(String))"
        )
        av0_head, bytes_t = scalars, "Nullable(String)"
        enum_t = "String"
        num_dp = "as_double Nullable(Float64), as_int Nullable(Int64)"
        ex_val = num_dp
    av0 = (
        f"Tuple({av0_head}, array_value Tuple(values Array({av1})), "
        f"kvlist_value Tuple(values Array(Tuple(key String, value {av1}))), bytes_value {bytes_t})"
    )
    if d in SCALAR.values():  # arrays and kvlists stay raw (bytes / JSON text): a much smaller type
        av0 = av1
    attrs = f"Array(Tuple(key String, value {av0}))"
    resource = f"Tuple(attributes {attrs})"
    scope = f"Tuple(name String, version String, attributes {attrs}, dropped_attributes_count UInt32)"
    tail = "otel_ai_encoding String, otel_ai_transport String"

    def envelope(top: str, scope_key: str, leaves: str, leaf: str) -> str:
        return (
            f"{top} Array(Tuple(resource {resource}, {scope_key} Array(Tuple(scope {scope}, "
            f"{leaves} Array({leaf}), schema_url String)), schema_url String)), {tail}"
        )

    span = (
        "Tuple(trace_id String, span_id String, trace_state String, parent_span_id String, flags UInt32, "
        f"name String, kind {enum_t}, start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
        f"attributes {attrs}, dropped_attributes_count UInt32, "
        f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {attrs})), "
        "dropped_events_count UInt32, "
        f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {attrs})), "
        f"dropped_links_count UInt32, status Tuple(message String, code {enum_t}))"
    )
    log = (
        f"Tuple(time_unix_nano UInt64, observed_time_unix_nano UInt64, severity_number {enum_t}, "
        f"severity_text String, body {av0}, attributes {attrs}, dropped_attributes_count UInt32, "
        "flags UInt32, trace_id String, span_id String, event_name String)"
    )
    exemplars = (
        f"exemplars Array(Tuple(filtered_attributes {attrs}, time_unix_nano UInt64, {ex_val}, "
        "span_id String, trace_id String))"
    )
    head = f"attributes {attrs}, start_time_unix_nano UInt64, time_unix_nano UInt64"
    # The presence column comes first: in the natural order ClickHouse 26.9 rejects it as a
    # oneof presence indicator ("not suitable"); every other order tried works.
    number_dp = f"Tuple({num_dp}, {head}, {exemplars}, flags UInt32)"
    hist_dp = (
        f"Tuple({head}, count UInt64, sum Float64, bucket_counts Array(UInt64), "
        f"explicit_bounds Array(Float64), {exemplars}, flags UInt32, min Float64, max Float64)"
    )
    buckets = "Tuple(offset Int32, bucket_counts Array(UInt64))"
    exp_dp = (
        f"Tuple({head}, count UInt64, sum Float64, scale Int32, zero_count UInt64, positive {buckets}, "
        f"negative {buckets}, flags UInt32, {exemplars}, min Float64, max Float64)"
    )
    summary_dp = (
        f"Tuple({head}, count UInt64, sum Float64, "
        "quantile_values Array(Tuple(quantile Float64, value Float64)), flags UInt32)"
    )
    metric = (
        "Tuple(name String, description String, unit String, "
        f"gauge Tuple(data_points Array({number_dp})), "
        f"sum Tuple(data_points Array({number_dp}), aggregation_temporality {enum_t}, is_monotonic Bool), "
        f"histogram Tuple(data_points Array({hist_dp}), aggregation_temporality {enum_t}), "
        f"exponential_histogram Tuple(data_points Array({exp_dp}), aggregation_temporality {enum_t}), "
        f"summary Tuple(data_points Array({summary_dp})))"
    )
    out = {
        "traces": envelope("resource_spans", "scope_spans", "spans", span),
        "logs": envelope("resource_logs", "scope_logs", "log_records", log),
        "metrics": envelope("resource_metrics", "scope_metrics", "metrics", metric),
    }
    if not pb:
        out = {k: _camel_names(v) for k, v in out.items()}
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_SNAKE = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
_KEEP = {"otel_ai_encoding", "otel_ai_transport"}


def _camel_names(structure: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1) if m.group(1) in _KEEP else _camel(m.group(1)), structure)


_FIELD = re.compile(r"(?<=\.)([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")
_TOP = re.compile(r"\b(resource_spans|resource_logs|resource_metrics)\b")


def _camel_select(sql: str) -> str:
    """Camelise proto field references (after a dot, plus the top-level arrays) in a SELECT."""
    return _TOP.sub(lambda m: _camel(m.group(1)), _FIELD.sub(lambda m: _camel(m.group(1)), sql))


# -- value rendering (contrib AsString) ---------------------------------------------------------


def go_float(x: str) -> str:
    return (
        f"if(isNaN({x}), 'json: unsupported value: NaN', if(isInfinite({x}), "
        f"if({x} > 0, 'json: unsupported value: +Inf', 'json: unsupported value: -Inf'), "
        f"if(abs({x}) >= 1e21, replaceOne(toString({x}), 'e', 'e+'), toString({x}))))"
    )


# toJSONString escapes like Go's encoding/json except: Go also escapes <, > and & (HTML-safe) and
# writes \u00XX escapes in lowercase hex; strings with the control characters that differ go to
# the python fallback (rare). Needs output_format_json_escape_forward_slashes=0.
_UPPER_HEX_ESCAPES = "[\\\\x0b\\\\x0e\\\\x0f\\\\x1a-\\\\x1f]"


def _json_str(s: str) -> str:
    # throwIf's condition is exact, so it is correct whether or not evaluation short-circuits
    # (a constant throwIf(1) would be folded and thrown at analysis time).
    guard = f"substring(toString(throwIf(match({s}, '{_UPPER_HEX_ESCAPES}'), '{FALLBACK_MARK}: control character')), 1, 0)"
    quoted = f"toJSONString({s})"
    for a, b in (("<", "\\\\u003c"), (">", "\\\\u003e"), ("&", "\\\\u0026")):
        quoted = f"replaceAll({quoted}, '{a}', '{b}')"
    return f"concat({guard}, {quoted})"


def _has(d: str, v: str, member: str, depth: int = 0) -> str:
    if d not in _JSON:
        return f"{v}.value = '{member}'"
    if member in ("array_value", "kvlist_value") and depth == 0:
        return f"notEmpty({v}.{member}.values)"
    return f"{v}.{member} IS NOT NULL"


def _bytes(d: str, x: str) -> str:
    return f"base64Encode({x})" if d not in _JSON else f"base64Encode(tryBase64Decode({x}))"


def _json1(d: str, v: str) -> str:
    """JSON text of a depth-1 value (an element of an array or kvlist)."""
    dbl = f"{v}.double_value"
    nested = f"({_has(d, v, 'array_value', 1)}) OR ({_has(d, v, 'kvlist_value', 1)})"
    expr = (
        f"multiIf({_has(d, v, 'string_value')}, {_json_str(f'{v}.string_value')}, "
        f"{_has(d, v, 'int_value')}, toString({v}.int_value), "
        f"{_has(d, v, 'bool_value')}, if({v}.bool_value, 'true', 'false'), "
        f"{_has(d, v, 'double_value')}, if(isFinite({dbl}), {go_float(dbl)}, "
        f"toString(throwIf(({_has(d, v, 'double_value')}) AND NOT isFinite({dbl}), "
        f"'{FALLBACK_MARK}: non-finite double in array'))), "
        f"{_has(d, v, 'bytes_value')}, concat('\"', {_bytes(d, f'{v}.bytes_value')}, '\"'), "
        f"{nested}, toString(throwIf({nested}, '{FALLBACK_MARK}: value nested deeper than one level')), "
        "'null')"
    )
    return expr if d not in _JSON else f"assumeNotNull({expr})"


def any_str(d: str, v: str, *, strict: bool = True) -> str:
    """SQL for pdata ``AsString`` of an ``AnyValue`` tuple expression ``v``.

    JSON cannot tell an empty value (``""``) from an empty array or kvlist (``"[]"``/``"{}"``):
    with ``strict`` that ambiguous case goes to the python fallback; without (log bodies, where
    an absent body is common) it is stored as ``""``.
    """
    scalars = (
        f"multiIf({_has(d, v, 'string_value')}, {v}.string_value, "
        f"{_has(d, v, 'int_value')}, toString({v}.int_value), "
        f"{_has(d, v, 'bool_value')}, if({v}.bool_value, 'true', 'false'), "
        f"{_has(d, v, 'double_value')}, {go_float(f'{v}.double_value')}, "
        f"{_has(d, v, 'bytes_value')}, {_bytes(d, f'{v}.bytes_value')}, "
    )
    if d == "pbs":
        composite = f"{v}.value IN ('array_value', 'kvlist_value')"
        return f"{scalars}{composite}, toString(throwIf({composite}, '{COMPOSITE_MARK}')), '')"
    if d == "jsons":
        composite = f"({v}.array_value IS NOT NULL OR {v}.kvlist_value IS NOT NULL)"
        expr = f"{scalars}{composite}, toString(throwIf({composite}, '{COMPOSITE_MARK}')), {{default}})"
        if not strict:
            return f"ifNull({expr.replace('{default}', chr(39) * 2)}, '')"
        # Nothing set at all (no scalar, no composite): ambiguous in JSON, as in the full dialect.
        none = " AND ".join(f"{v}.{m} IS NULL" for m in ("string_value", "int_value", "bool_value",
                                                         "double_value", "bytes_value"))  # fmt: skip
        guard = f"toString(throwIf({none}, '{FALLBACK_MARK}: empty value in JSON'))"
        return f"ifNull({expr.replace('{default}', guard)}, '')"
    # Arrays and kvlists share one rendering lambda (the analyzer's cost grows with expression
    # size and it is paid on every INSERT): elements become (key, value) pairs, keys sorted.
    is_kv = _has(d, v, "kvlist_value")
    pairs = (
        f"arrayConcat(arrayMap(x -> ('', x), {v}.array_value.values), "
        f"arraySort(p -> p.1, arrayMap(p -> (p.key, p.value), {v}.kvlist_value.values)))"
    )
    element = f"concat(if({is_kv}, concat({_json_str('p.1')}, ':'), ''), {_json1(d, 'p.2')})"
    composite = (
        f"concat(if({is_kv}, '{{', '['), arrayStringConcat(arrayMap(p -> {element}, {pairs}), ','), "
        f"if({is_kv}, '}}', ']'))"
    )
    expr = f"{scalars}({_has(d, v, 'array_value')}) OR ({is_kv}), {composite}, {{default}})"
    if d not in _JSON:
        return expr.replace("{default}", "''")
    if not strict:
        return f"ifNull({expr.replace('{default}', chr(39) * 2)}, '')"
    empty = " AND ".join(
        [
            f"{v}.{m} IS NULL"
            for m in ("string_value", "int_value", "bool_value", "double_value", "bytes_value")
        ]
        + [f"empty({v}.array_value.values)", f"empty({v}.kvlist_value.values)"]
    )
    guard = f"toString(throwIf({empty}, '{FALLBACK_MARK}: empty value or empty array/kvlist in JSON'))"
    return f"ifNull({expr.replace('{default}', guard)}, '')"


def attrs(d: str, a: str) -> str:
    """SQL for an attribute list → ``Map(String, String)``."""
    return f"mapFromArrays(arrayMap(kv -> kv.key, {a}), arrayMap(kv -> {any_str(d, 'kv.value')}, {a}))"


def _ts(x: str) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({x}))"


def _hex(d: str, x: str) -> str:
    return f"lower(hex({x}))" if d not in _JSON else f"lower({x})"


def _enum(d: str, x: str, names: list[str]) -> str:
    """An enum field as its number: pb ints; JSON ints or names (spec says ints; be lenient)."""
    if d not in _JSON:
        return x
    listed = "[" + ", ".join(f"'{n}'" for n in names) + "]"
    return f"ifNull(toInt32OrNull({x}), toInt32(indexOf({listed}, {x})) - 1)"


_KINDS = ["SPAN_KIND_" + k for k in ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")]
_CODES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
_SEVERITIES = ["SEVERITY_NUMBER_UNSPECIFIED"] + [
    f"SEVERITY_NUMBER_{level}{n if n > 1 else ''}"
    for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    for n in range(1, 5)
]
_TEMPORALITY = [f"AGGREGATION_TEMPORALITY_{t}" for t in ("UNSPECIFIED", "DELTA", "CUMULATIVE")]

# -- flatten SELECTs (``{src}`` is the input table function; ``{db}`` the database) -------------


def _maps(d: str, lists: str) -> str:
    """Several attribute lists rendered by ONE ``attrs`` expression (``Array(Map)``).

    The analyzer's cost grows with the expression and is paid on every INSERT, so every
    attribute list of a row (span + its events + its links; resource + scope) shares one copy.
    """
    return f"arrayMap(a -> {attrs(d, 'a')}, {lists})"


def _scope_level(d: str, top: str, scope: str, leaves: str) -> str:
    maps = _maps(d, "[rs.resource.attributes, ss.scope.attributes]")
    return (
        f"SELECT {maps} AS rs_maps, rs_maps[1] AS r_attrs, rs_maps[2] AS s_attrs, "
        "r_attrs['service.name'] AS svc, rs.schema_url AS r_url, "
        "ss.scope.name AS s_name, ss.scope.version AS s_version, "
        "ss.scope.dropped_attributes_count AS s_dropped, "
        "ss.schema_url AS s_url, otel_ai_encoding AS enc, otel_ai_transport AS tr, "
        f"ss.{leaves} AS leaves FROM {{src}} ARRAY JOIN {top} AS rs ARRAY JOIN rs.{scope} AS ss"
    )


def traces_sql(d: str) -> str:
    kind = _enum(d, "sp.kind", _KINDS)
    code = _enum(d, "sp.status.code", _CODES)
    kinds = "['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer']"
    lists = (
        "arrayConcat([sp.attributes], arrayMap(e -> e.attributes, sp.events), "
        "arrayMap(l -> l.attributes, sp.links))"
    )
    return f"""
WITH {_maps(d, lists)} AS sp_maps
SELECT
    {_ts("sp.start_time_unix_nano")}, {_hex(d, "sp.trace_id")}, {_hex(d, "sp.span_id")},
    {_hex(d, "sp.parent_span_id")}, sp.trace_state, sp.name,
    if({kind} BETWEEN 0 AND 5, {kinds}[{kind} + 1], 'Unspecified'),
    svc, r_attrs, s_name, s_version, sp_maps[1],
    if(sp.end_time_unix_nano > sp.start_time_unix_nano, sp.end_time_unix_nano - sp.start_time_unix_nano, 0),
    if({code} BETWEEN 0 AND 2, ['Unset', 'Ok', 'Error'][{code} + 1], 'Unset'), sp.status.message,
    arrayMap(e -> {_ts("e.time_unix_nano")}, sp.events), arrayMap(e -> e.name, sp.events),
    arraySlice(sp_maps, 2, length(sp.events)),
    arrayMap(l -> {_hex(d, "l.trace_id")}, sp.links), arrayMap(l -> {_hex(d, "l.span_id")}, sp.links),
    arrayMap(l -> l.trace_state, sp.links), arraySlice(sp_maps, 2 + length(sp.events), length(sp.links)),
    sp.flags, sp.dropped_attributes_count, sp.dropped_events_count, sp.dropped_links_count, s_attrs,
    r_url, s_url, enc, tr
FROM ({_scope_level(d, "resource_spans", "scope_spans", "spans")})
ARRAY JOIN leaves AS sp"""


def _target(table: str, columns: tuple[str, ...]) -> str:
    """``table (col, …)`` of an INSERT, in the DDL's column order (``storage.schema``)."""
    return f"{table} ({', '.join(f'`{c}`' for c in columns)})"


def logs_sql(d: str) -> str:
    sev = _enum(d, "lr.severity_number", _SEVERITIES)
    return f"""
SELECT
    {_ts("if(lr.time_unix_nano = 0, lr.observed_time_unix_nano, lr.time_unix_nano)")},
    {_ts("lr.observed_time_unix_nano")}, {_hex(d, "lr.trace_id")}, {_hex(d, "lr.span_id")},
    bitAnd(lr.flags, 255), lr.severity_text, bitAnd({sev}, 255), svc,
    {any_str(d, "lr.body", strict=False)}, r_url, r_attrs, s_url, s_name, s_version, s_attrs, {attrs(d, "lr.attributes")},
    lr.event_name, lr.dropped_attributes_count, enc, tr
FROM ({_scope_level(d, "resource_logs", "scope_logs", "log_records")})
ARRAY JOIN leaves AS lr"""


METRIC_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def _number(d: str, x: str) -> str:
    if d not in _JSON:
        return f"if({x}.value = 'as_int', toFloat64({x}.as_int), {x}.as_double)"
    return f"if({x}.as_int IS NOT NULL, toFloat64(assumeNotNull({x}.as_int)), ifNull({x}.as_double, 0))"


def _metric_point(d: str, kind: str) -> str:
    """The SELECT expressions of one point kind, in the order of its table's value columns."""
    ex = (
        "arraySlice(dp_maps, 2), "
        f"arrayMap(x -> {_ts('x.time_unix_nano')}, dp.exemplars), "
        f"arrayMap(x -> {_number(d, 'x')}, dp.exemplars), "
        f"arrayMap(x -> {_hex(d, 'x.span_id')}, dp.exemplars), arrayMap(x -> {_hex(d, 'x.trace_id')}, dp.exemplars)"
    )

    def temporality(metric: str) -> str:
        return _enum(d, f"m.{metric}.aggregation_temporality", _TEMPORALITY)

    if kind == "gauge":
        return f"{_number(d, 'dp')}, dp.flags, {ex}"
    if kind == "sum":
        return f"{_number(d, 'dp')}, dp.flags, {ex}, {temporality('sum')}, m.sum.is_monotonic"
    if kind == "histogram":
        return (
            "dp.count, dp.sum, dp.bucket_counts, dp.explicit_bounds, "
            f"{ex}, dp.flags, dp.min, dp.max, {temporality('histogram')}"
        )
    if kind == "exponential_histogram":
        return (
            "dp.count, dp.sum, dp.scale, dp.zero_count, dp.positive.offset, dp.positive.bucket_counts, "
            f"dp.negative.offset, dp.negative.bucket_counts, {ex}, dp.flags, dp.min, dp.max, "
            f"{temporality('exponential_histogram')}"
        )
    return (
        "dp.count, dp.sum, arrayMap(q -> q.quantile, dp.quantile_values), "
        "arrayMap(q -> q.value, dp.quantile_values), dp.flags"
    )


def metric_sql(d: str, kind: str) -> tuple[str, str]:
    values = _metric_point(d, kind)
    head = (
        "r_attrs, r_url, s_name, s_version, s_attrs, s_dropped, s_url, svc, "
        "m.name, m.description, m.unit, dp_maps[1], "
        f"{_ts('dp.start_time_unix_nano')}, {_ts('dp.time_unix_nano')}"
    )
    target = _target(f"otel_metrics_{kind}", METRIC_COLUMNS[kind])
    lists = (
        "[dp.attributes]"
        if kind == "summary"  # summary points have no exemplars
        else "arrayConcat([dp.attributes], arrayMap(x -> x.filtered_attributes, dp.exemplars))"
    )
    select = f"""
WITH {_maps(d, lists)} AS dp_maps
SELECT
    {head}, {values}, enc, tr
FROM ({_scope_level(d, "resource_metrics", "scope_metrics", "metrics")})
ARRAY JOIN leaves AS m
ARRAY JOIN m.{kind}.data_points AS dp"""
    return target, select


def statements(d: str, signal: str) -> list[str]:
    """``INSERT INTO {db}.<table> … SELECT …`` statements for one signal in dialect ``d``."""
    if signal == "traces":
        pairs = [(_target("otel_traces", TRACE_COLUMNS), traces_sql(d))]
    elif signal == "logs":
        pairs = [(_target("otel_logs", LOG_COLUMNS), logs_sql(d))]
    else:
        pairs = [metric_sql(d, kind) for kind in METRIC_KINDS]
    out = []
    for target, select in pairs:
        if d in _JSON:
            select = _camel_select(select)
        out.append(f"INSERT INTO {{db}}.{target}{select}")
    return out


DIALECTS = ("pbs", "pb", "jsons", "json")
STRUCTURES = {d: _structures(d) for d in DIALECTS}
STATEMENTS = {(d, s): statements(d, s) for d in DIALECTS for s in ("traces", "logs", "metrics")}
