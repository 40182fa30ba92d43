"""The "python" decoder: upb parse + per-item Python flatten into column lists.

This is the portable fallback (works against any ClickHouse, no ``.proto`` on the server) and the
comparison baseline (b) of ``bench/ingest.py``. Values are encoded exactly like the contrib
exporter (see :mod:`.values`): lowercase hex ids ('' when absent), span
kind / status code names, nanosecond durations, ``AsString`` attribute maps.

JSON payloads are first normalised to protobuf messages by :func:`otel_ai.otlp.jsonfix.json_to_request`
(hex ids converted with length checks; never ``json_format`` on hex ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload
from otel_ai.otlp.jsonfix import json_to_request
from otel_ai.otlp.validate import parse_protobuf
from otel_ai.storage.decoders.values import as_string, attrs_map
from otel_ai.storage.schema import LOG_COLUMNS, METRIC_COLUMNS, TRACE_COLUMNS

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")

Rows = list[list[Any]]


def request_of(payload: Payload) -> Any:
    """The protobuf request message of a validated payload (either encoding)."""
    if payload.body_encoding == "json":
        return json_to_request(payload.signal, payload.body)
    return parse_protobuf(payload.signal, payload.body)


def flatten(payloads: Sequence[Payload]) -> dict[str, Rows]:
    """Rows per target table (row-oriented lists) for a batch of payloads of one signal."""
    out: dict[str, Rows] = {}
    for p in payloads:
        req = request_of(p)
        if p.signal == "traces":
            out.setdefault("otel_traces", []).extend(_spans(req, p.encoding, p.transport))
        elif p.signal == "logs":
            out.setdefault("otel_logs", []).extend(_logs(req, p.encoding, p.transport))
        else:
            for table, rows in _metrics(req, p.encoding, p.transport).items():
                out.setdefault(table, []).extend(rows)
    return out


def columns_of(table: str) -> tuple[str, ...]:
    if table == "otel_traces":
        return TRACE_COLUMNS
    if table == "otel_logs":
        return LOG_COLUMNS
    return METRIC_COLUMNS[table[len("otel_metrics_") :]]


def _service(rattrs: dict[str, str]) -> str:
    return rattrs.get("service.name", "")


def _spans(req: Any, enc: str, transport: str) -> Rows:
    rows: Rows = []
    for rs in req.resource_spans:
        rattrs = attrs_map(rs.resource.attributes)
        svc = _service(rattrs)
        rurl = rs.schema_url
        for ss in rs.scope_spans:
            sc = ss.scope
            sattrs = attrs_map(sc.attributes)
            for s in ss.spans:
                evs = s.events
                lns = s.links
                kind = s.kind
                code = s.status.code
                rows.append([
                    s.start_time_unix_nano, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                    s.trace_state, s.name, SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified",
                    svc, rattrs, sc.name, sc.version, attrs_map(s.attributes),
                    max(0, s.end_time_unix_nano - s.start_time_unix_nano),
                    STATUS_CODES[code] if 0 <= code < 3 else "Unset", s.status.message,
                    [e.time_unix_nano for e in evs], [e.name for e in evs],
                    [attrs_map(e.attributes) for e in evs],
                    [ln.trace_id.hex() for ln in lns], [ln.span_id.hex() for ln in lns],
                    [ln.trace_state for ln in lns], [attrs_map(ln.attributes) for ln in lns],
                    s.flags, s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count,
                    sattrs, rurl, ss.schema_url, enc, transport,
                ])  # fmt: skip
    return rows


def _logs(req: Any, enc: str, transport: str) -> Rows:
    rows: Rows = []
    for rl in req.resource_logs:
        rattrs = attrs_map(rl.resource.attributes)
        svc = _service(rattrs)
        for sl in rl.scope_logs:
            sc = sl.scope
            sattrs = attrs_map(sc.attributes)
            for r in sl.log_records:
                # contrib: a record without a timestamp is stored at its observed time
                ts = r.time_unix_nano or r.observed_time_unix_nano
                rows.append([
                    ts, r.observed_time_unix_nano, r.trace_id.hex(), r.span_id.hex(), r.flags & 0xFF,
                    r.severity_text, r.severity_number & 0xFF, svc, as_string(r.body), rl.schema_url,
                    rattrs, sl.schema_url, sc.name, sc.version, sattrs, attrs_map(r.attributes),
                    r.event_name, r.dropped_attributes_count, enc, transport,
                ])  # fmt: skip
    return rows


def _exemplars(points_exemplars: Any) -> list[list[Any]]:
    ex = list(points_exemplars)
    return [
        [attrs_map(e.filtered_attributes) for e in ex],
        [e.time_unix_nano for e in ex],
        [float(e.as_int) if e.WhichOneof("value") == "as_int" else e.as_double for e in ex],
        [e.span_id.hex() for e in ex],
        [e.trace_id.hex() for e in ex],
    ]


def _number(dp: Any) -> float:
    return float(dp.as_int) if dp.WhichOneof("value") == "as_int" else dp.as_double


def _metrics(req: Any, enc: str, transport: str) -> dict[str, Rows]:
    out: dict[str, Rows] = {}
    for rm in req.resource_metrics:
        rattrs = attrs_map(rm.resource.attributes)
        svc = _service(rattrs)
        for sm in rm.scope_metrics:
            sc = sm.scope
            sattrs = attrs_map(sc.attributes)
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(m, kind)
                table = "exponential_histogram" if kind == "exponential_histogram" else kind
                rows = out.setdefault(f"otel_metrics_{table}", [])
                for dp in data.data_points:
                    head = [
                        rattrs, rm.schema_url, sc.name, sc.version, sattrs, sc.dropped_attributes_count,
                        sm.schema_url, svc, m.name, m.description, m.unit, attrs_map(dp.attributes),
                        dp.start_time_unix_nano, dp.time_unix_nano,
                    ]  # fmt: skip
                    rows.append(head + _point(kind, data, dp) + [enc, transport])
    return out


def _point(kind: str, data: Any, dp: Any) -> list[Any]:
    if kind == "gauge":
        return [_number(dp), dp.flags, *_exemplars(dp.exemplars)]
    if kind == "sum":
        return [
            _number(dp), dp.flags, *_exemplars(dp.exemplars), int(data.aggregation_temporality),
            bool(data.is_monotonic),
        ]  # fmt: skip
    if kind == "histogram":
        return [
            dp.count, dp.sum, list(dp.bucket_counts), list(dp.explicit_bounds), *_exemplars(dp.exemplars),
            dp.flags, dp.min, dp.max, int(data.aggregation_temporality),
        ]  # fmt: skip
    if kind == "exponential_histogram":
        return [
            dp.count, dp.sum, dp.scale, dp.zero_count, dp.positive.offset, list(dp.positive.bucket_counts),
            dp.negative.offset, list(dp.negative.bucket_counts), *_exemplars(dp.exemplars), dp.flags,
            dp.min, dp.max, int(data.aggregation_temporality),
        ]  # fmt: skip
    qs = dp.quantile_values
    return [dp.count, dp.sum, [q.quantile for q in qs], [q.value for q in qs], dp.flags]


def write_python(storage: Any, payloads: Sequence[Payload]) -> None:
    """The python decoder: flatten every payload and insert each table column-oriented."""
    tables = flatten(payloads)
    for table, rows in tables.items():
        if not rows:
            continue
        columns = [list(col) for col in zip(*rows, strict=True)]
        try:
            # Over HTTP the INSERT's settings are URL parameters; chDB's driver would pay a SET and
            # a restore per setting, so this (fallback) path builds every index there.
            settings = None if storage.embedded else storage.insert_settings
            storage.insert(table, columns, columns_of(table), column_oriented=True, settings=settings)
        except StorageError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # a value the driver cannot encode
            raise DecodeError(f"cannot encode rows for {table}: {exc}") from exc
