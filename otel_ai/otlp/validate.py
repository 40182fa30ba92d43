"""Validate one decompressed OTLP export body and count its items (spans, data points, log records).

Both transports call :func:`validate` before a payload is queued. It is deliberately cheap:

* protobuf: one upb parse (``FromString``) and an id-length check per span / log record; the
  attributes are never walked. Trace requests are first walked in C (``check_traces``: the same
  checks, no objects built, ~0.8 µs per span instead of ~1.9); only what it does not vouch for
  is parsed with upb. Items with invalid ids are removed (the request is re-encoded
  without them — a rare path) and reported through ``rejected``/``error_message`` so the receiver
  answers with ``partial_success`` (OTLP spec §Partial Success).
* JSON (spec §JSON Protobuf Encoding): one ``orjson`` parse and a shape walk down to the items.
  Ids are hex (never base64 — ``json_format.Parse`` misreads them), int64 may be a string or a
  number, enums ints or names, unknown fields are ignored. A wrong shape raises
  :class:`~otel_ai.errors.DecodeError` naming the JSON path.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import orjson
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_ai.errors import DecodeError
from otel_ai.model import Encoding, Payload, Signal, Transport

REQUEST_TYPES: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_TOP = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}
_SCOPE = {"traces": "scopeSpans", "metrics": "scopeMetrics", "logs": "scopeLogs"}
_ITEMS = {"traces": "spans", "metrics": "metrics", "logs": "logRecords"}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_HEX = frozenset("0123456789abcdefABCDEF")
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)


def validate(signal: Signal, encoding: Encoding, transport: Transport, body: bytes) -> Payload:
    """Decode-check ``body`` (already decompressed) and return the :class:`Payload` to queue.

    Raises :class:`DecodeError` when the body cannot be decoded at all.
    """
    if signal not in REQUEST_TYPES:
        raise DecodeError(f"unknown signal {signal!r}")
    if encoding == "protobuf":
        body, items, rejected, message = _validate_protobuf(signal, body)
    elif encoding == "json":
        if signal == "traces" and (transcoded := _validate_json_fast(body)) is not None:
            pb, items = transcoded
            return Payload(signal, encoding, transport, pb, items, wire="protobuf")
        body, items, rejected, message = _validate_json(signal, body)
    else:
        raise DecodeError(f"unknown encoding {encoding!r}")
    return Payload(signal, encoding, transport, body, items, rejected, message)


# -- protobuf ---------------------------------------------------------------------------------


def parse_protobuf(signal: str, body: bytes) -> Any:
    """The upb-backed ``Export*ServiceRequest`` of ``body``; :class:`DecodeError` if it is not one."""
    cls = REQUEST_TYPES[signal]
    try:
        return cls.FromString(body)
    except (ProtoDecodeError, ValueError) as exc:
        raise DecodeError(f"invalid protobuf {cls.__name__}: {exc}") from exc


def _bad_span_ids(span: Any) -> str | None:
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    if len(tid) != 16 or tid == _ZERO16:
        return f"traceId: expected 16 non-zero bytes, got {len(tid)}"
    if len(sid) != 8 or sid == _ZERO8:
        return f"spanId: expected 8 non-zero bytes, got {len(sid)}"
    if len(pid) not in (0, 8):
        return f"parentSpanId: expected 0 or 8 bytes, got {len(pid)}"
    for j, link in enumerate(span.links):
        if len(link.trace_id) not in (0, 16) or len(link.span_id) not in (0, 8):
            return f"links[{j}]: trace id must be 0 or 16 bytes and span id 0 or 8 bytes"
    return None


def _pb_span_ok(span: Any) -> bool:
    """The common case, inlined: valid ids and no links (links take the detailed check)."""
    tid, sid = span.trace_id, span.span_id
    return (
        len(tid) == 16
        and len(sid) == 8
        and tid != _ZERO16
        and sid != _ZERO8
        and len(span.parent_span_id) in (0, 8)
        and not span.links
    )


def _pb_log_ok(rec: Any) -> bool:
    return len(rec.trace_id) in (0, 16) and len(rec.span_id) in (0, 8)


def _bad_log_ids(rec: Any) -> str | None:
    if len(rec.trace_id) not in (0, 16):
        return f"traceId: expected 0 or 16 bytes, got {len(rec.trace_id)}"
    if len(rec.span_id) not in (0, 8):
        return f"spanId: expected 0 or 8 bytes, got {len(rec.span_id)}"
    return None


def _validate_protobuf(signal: str, body: bytes) -> tuple[bytes, int, int, str]:
    native = _native() if signal == "traces" else None
    if native is not None:
        # The C walk accepts a subset of what upb does (well-formed, UTF-8 strings, every span's
        # ids fine, only fields it knows); anything else is decided — and worded — by upb below.
        with contextlib.suppress(native.Unsupported):
            return body, native.check_traces(body), 0, ""
    req = parse_protobuf(signal, body)
    items = rejected = 0
    first_error = ""
    if signal == "metrics":
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind is not None:
                        items += len(getattr(m, kind).data_points)
        return body, items, 0, ""
    check = _bad_span_ids if signal == "traces" else _bad_log_ids
    top, scope, leaf = (
        ("resource_spans", "scope_spans", "spans")
        if signal == "traces"
        else ("resource_logs", "scope_logs", "log_records")
    )
    for ri, rs in enumerate(getattr(req, top)):
        for si, ss in enumerate(getattr(rs, scope)):
            leaves = getattr(ss, leaf)
            bad: list[int] = []
            fast = _pb_span_ok if signal == "traces" else _pb_log_ok
            for k, item in enumerate(leaves):
                if fast(item):
                    continue
                why = check(item)
                if why is not None:
                    bad.append(k)
                    if not first_error:
                        first_error = (
                            f"{_TOP[signal]}[{ri}].{_SCOPE[signal]}[{si}].{_ITEMS[signal]}[{k}].{why}"
                        )
            items += len(leaves) - len(bad)
            if bad:
                rejected += len(bad)
                for k in reversed(bad):
                    del leaves[k]
    if rejected:
        body = req.SerializeToString()
        return body, items, rejected, _reject_message(signal, rejected, first_error)
    return body, items, 0, ""


def _reject_message(signal: str, rejected: int, first: str) -> str:
    what = {"traces": "span", "metrics": "data point", "logs": "log record"}[signal]
    plural = "s" if rejected != 1 else ""
    return f"rejected {rejected} {what}{plural} with invalid ids; first: {first}"


# -- JSON -------------------------------------------------------------------------------------


def parse_json(body: bytes) -> dict[str, Any]:
    """The parsed OTLP/JSON object of ``body``; :class:`DecodeError` if it is not a JSON object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError(f"invalid OTLP/JSON: expected an object at the top level, got {_kind(doc)}")
    return doc


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{path}{key}: expected a list, got {_kind(value)}")
    return value


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"{path}: expected an object, got {_kind(value)}")
    return value


def check_hex(value: Any, nbytes: int, path: str, *, optional: bool) -> str:
    """Lowercase hex of a JSON id; raises :class:`DecodeError` naming ``path`` when malformed."""
    if value is None or value == "":
        if optional:
            return ""
        raise DecodeError(f"{path}: expected {nbytes * 2} hex characters, got none")
    if not isinstance(value, str):
        raise DecodeError(f"{path}: expected a hex string, got {_kind(value)}")
    if len(value) != nbytes * 2:
        raise DecodeError(f"{path}: expected {nbytes * 2} hex characters, got {len(value)}")
    if not _HEX.issuperset(value):
        raise DecodeError(f"{path}: not a hex string")
    return value.lower()


@functools.cache
def _native() -> Any:
    """The compiled module (``otel_ai/native/_native.c``: the span check, the JSON transcoder), or None.

    Imported lazily: the module is built by ``pip install`` next to the storage code that uses
    it most; without a C compiler every request takes the upb / pure-Python paths.
    """
    try:
        from otel_ai.native import _native as native
    except ImportError:  # pragma: no cover
        return None
    return native


def _validate_json_fast(body: bytes) -> tuple[bytes, int] | None:
    """Trace requests: transcode in C and check the ids on the protobuf (no Python dicts built).

    Returns the protobuf and its span count: the payload carries the protobuf from here on
    (``Payload.wire``), so the decoders, the queue and the write-ahead log never see the JSON
    again (half the bytes, and no second transcode at insert). The transcoder reads exactly the
    JSON the python path accepts, into the same message (``_native.c``).

    None whenever the exact path must decide: JSON the transcoder declines or finds malformed (the
    Python path words the error with its JSON path) and requests with a span to reject (it
    removes that span from the JSON); the body then stays the client's JSON.
    """
    native = _native()
    if native is None:
        return None
    try:
        pb = native.json_traces_to_protobuf(body)
        return pb, native.check_traces(pb)
    except (ValueError, native.Unsupported):  # malformed or unusual: the Python path words it
        return None


def _validate_json(signal: str, body: bytes) -> tuple[bytes, int, int, str]:
    doc = parse_json(body)
    top, scope, leaf = _TOP[signal], _SCOPE[signal], _ITEMS[signal]
    items = rejected = 0
    first_error = ""
    for ri, rs in enumerate(_list(doc, top, "")):
        rpath = f"{top}[{ri}]"
        rs = _obj(rs, rpath)
        if "resource" in rs and rs["resource"] is not None:
            _obj(rs["resource"], f"{rpath}.resource")
        for si, ss in enumerate(_list(rs, scope, f"{rpath}.")):
            spath = f"{rpath}.{scope}[{si}]"
            ss = _obj(ss, spath)
            leaves = _list(ss, leaf, f"{spath}.")
            if signal == "metrics":
                for mi, m in enumerate(leaves):
                    items += _count_metric(_obj(m, f"{spath}.metrics[{mi}]"), f"{spath}.metrics[{mi}]")
                continue
            keep: list[Any] = []
            fast = _fast_span_ok if signal == "traces" else _fast_log_ok
            for k, item in enumerate(leaves):
                if fast(item):
                    keep.append(item)
                    continue
                ipath = f"{spath}.{leaf}[{k}]"
                item = _obj(item, ipath)
                try:
                    if signal == "traces":
                        _check_json_span(item, ipath)
                    else:
                        check_hex(item.get("traceId"), 16, f"{ipath}.traceId", optional=True)
                        check_hex(item.get("spanId"), 8, f"{ipath}.spanId", optional=True)
                except DecodeError as exc:
                    rejected += 1
                    first_error = first_error or exc.message
                    continue
                keep.append(item)
            if len(keep) != len(leaves):
                ss[leaf] = keep
            items += len(keep)
    if rejected:
        return orjson.dumps(doc), items, rejected, _reject_message(signal, rejected, first_error)
    return body, items, 0, ""


def _hex_ok(value: Any, nchars: int) -> bool:
    """True when ``value`` is exactly ``nchars`` hex digits and not all zero (C-speed fast path)."""
    if type(value) is not str or len(value) != nchars:
        return False
    try:
        raw = bytes.fromhex(value)  # also accepts spaces, hence the length check below
    except ValueError:
        return False
    return len(raw) * 2 == nchars and raw.count(0) != len(raw)


def _fast_span_ok(span: Any) -> bool:
    """The common case without building paths: a dict with valid ids and no links."""
    if type(span) is not dict or "links" in span:
        return False
    pid = span.get("parentSpanId")
    return (
        _hex_ok(span.get("traceId"), 32)
        and _hex_ok(span.get("spanId"), 16)
        and (pid is None or pid == "" or _hex_ok(pid, 16))
    )


def _fast_log_ok(rec: Any) -> bool:
    if type(rec) is not dict:
        return False
    tid, sid = rec.get("traceId"), rec.get("spanId")
    return (tid is None or tid == "" or _hex_ok(tid, 32)) and (sid is None or sid == "" or _hex_ok(sid, 16))


def _check_json_span(span: dict[str, Any], path: str) -> None:
    tid = check_hex(span.get("traceId"), 16, f"{path}.traceId", optional=False)
    sid = check_hex(span.get("spanId"), 8, f"{path}.spanId", optional=False)
    if tid == "0" * 32 or sid == "0" * 16:
        raise DecodeError(f"{path}: all-zero trace or span id")
    check_hex(span.get("parentSpanId"), 8, f"{path}.parentSpanId", optional=True)
    for j, link in enumerate(_list(span, "links", f"{path}.")):
        link = _obj(link, f"{path}.links[{j}]")
        check_hex(link.get("traceId"), 16, f"{path}.links[{j}].traceId", optional=True)
        check_hex(link.get("spanId"), 8, f"{path}.links[{j}].spanId", optional=True)


def _count_metric(metric: dict[str, Any], path: str) -> int:
    for kind in _METRIC_KINDS:
        data = metric.get(kind)
        if data is None:
            continue
        data = _obj(data, f"{path}.{kind}")
        points = _list(data, "dataPoints", f"{path}.{kind}.")
        for pi, point in enumerate(points):
            ppath = f"{path}.{kind}.dataPoints[{pi}]"
            point = _obj(point, ppath)
            for ei, ex in enumerate(_list(point, "exemplars", f"{ppath}.")):
                ex = _obj(ex, f"{ppath}.exemplars[{ei}]")
                check_hex(ex.get("traceId"), 16, f"{ppath}.exemplars[{ei}].traceId", optional=True)
                check_hex(ex.get("spanId"), 8, f"{ppath}.exemplars[{ei}].spanId", optional=True)
        return len(points)
    return 0
