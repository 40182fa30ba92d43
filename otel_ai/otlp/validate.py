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
import json
from typing import Any

from google.protobuf.message import DecodeError as ProtoDecodeError

from otel_ai.errors import DecodeError, RefusedContent
from otel_ai.model import Encoding, Payload, Signal, Transport
from otel_ai.otlp.jsonfix import doc_to_request
from otel_ai.otlp.jsonshape import REQUEST_TYPES, check_hex
from otel_ai.otlp.jsonshape import json_kind as _kind
from otel_ai.otlp.jsonshape import json_list as _list
from otel_ai.otlp.jsonshape import json_obj as _obj
from otel_ai.otlp.limits import Limits, Verdict, check, reject_message

_TOP = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}
_SCOPE = {"traces": "scopeSpans", "metrics": "scopeMetrics", "logs": "scopeLogs"}
_ITEMS = {"traces": "spans", "metrics": "metrics", "logs": "logRecords"}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)


_DEFAULT_LIMITS = Limits()


def validate(
    signal: Signal, encoding: Encoding, transport: Transport, body: bytes, limits: Limits | None = None
) -> Payload:
    """Decode-check ``body`` (already decompressed) and return the :class:`Payload` to queue.

    Everything the store could not hold faithfully is refused here, before any acknowledgement
    (:mod:`otel_ai.otlp.limits`): items out of range are removed and reported, a request over a
    limit raises :class:`~otel_ai.errors.RefusedContent`. OTLP/JSON leaves as protobuf
    (``Payload.wire``), parsed once with protobuf's own rules, so what was accepted is what every
    decoder reads. Raises :class:`DecodeError` when the body cannot be decoded at all.
    """
    if signal not in REQUEST_TYPES:
        raise DecodeError(f"unknown signal {signal!r}")
    lim = limits or _DEFAULT_LIMITS
    if encoding == "protobuf":
        body, items, verdict = _validate_protobuf(signal, body, lim)
        wire: Encoding | None = None
    elif encoding == "json":
        if signal == "traces" and (fast := validate_json_traces_fast(transport, body, lim)) is not None:
            return fast
        body, items, verdict = _validate_json(signal, body, lim)
        wire = "protobuf"
    else:
        raise DecodeError(f"unknown encoding {encoding!r}")
    if not verdict.rejected:
        return Payload(signal, encoding, transport, body, items, wire=wire)
    reasons = tuple(sorted((verdict.reasons or {}).items()))
    message = reject_message(signal, verdict)
    return Payload(signal, encoding, transport, body, items, verdict.rejected, message, wire, reasons)


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


def _validate_protobuf(signal: str, body: bytes, limits: Limits) -> tuple[bytes, int, Verdict]:
    native = _native() if signal == "traces" else None
    if native is not None:
        # The C walk accepts a subset of what upb does (well-formed, UTF-8 strings, every span's
        # ids fine, only fields it knows, within the limits); anything else is decided — and
        # worded — by upb and the limits below.
        with contextlib.suppress(native.Unsupported):
            return body, native.check_traces(body, **limits.native_args(len(body))), Verdict()
    req = parse_protobuf(signal, body)
    return _checked(signal, req, body, limits, _remove_bad_ids(signal, req))


def _checked(
    signal: str, req: Any, body: bytes, limits: Limits, verdict: Verdict, size: int | None = None
) -> tuple[bytes, int, Verdict]:
    """Apply the limits to the parsed ``req`` (after the id checks in ``verdict``); re-encode if changed.

    ``size`` is the request's size as received (default ``len(body)``), the base of the
    amplification bound.
    """
    ids = verdict
    verdict = check(signal, req, limits, len(body) if size is None else size)
    if ids.reasons:
        for reason, n in ids.reasons.items():
            verdict.reject(reason, n, "")
        verdict.first = ids.first or verdict.first
    if verdict.changed:
        body = req.SerializeToString()
    return body, verdict.items, verdict


def _remove_bad_ids(signal: str, req: Any) -> Verdict:
    """Remove the spans / log records with invalid ids from ``req`` (reason ``invalid_id``)."""
    verdict = Verdict()
    if signal == "metrics":
        return verdict
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
                    if not verdict.first:
                        verdict.first = (
                            f"{_TOP[signal]}[{ri}].{_SCOPE[signal]}[{si}].{_ITEMS[signal]}[{k}].{why}"
                        )
            if bad:
                verdict.reject("invalid_id", len(bad), "")
                for k in reversed(bad):
                    del leaves[k]
    return verdict


# -- JSON -------------------------------------------------------------------------------------


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


def validate_json_traces_fast(transport: Transport, body: bytes, limits: Limits) -> Payload | None:
    """:func:`validate` of an OTLP/JSON trace request on the C path alone, or None when
    :func:`validate` must decide (cheap enough to run on the event loop: ~4 µs per span)."""
    transcoded = _validate_json_fast(body, limits)
    if transcoded is None:
        return None
    pb, items = transcoded
    return Payload("traces", "json", transport, pb, items, wire="protobuf")


def _validate_json_fast(body: bytes, limits: Limits) -> tuple[bytes, int] | None:
    """Trace requests: transcode in C, checking ids and limits as the protobuf is written (no
    Python dicts built; the same verdict as ``check_traces`` on the transcoder's output, without
    a second walk: ~30 % of the C time of a 512-span request).

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
        pb, spans = native.json_traces_checked(body, **limits.native_args(len(body)))
        return pb, spans
    except (ValueError, native.Unsupported):  # malformed or unusual: the Python path words it
        return None


def _validate_json(signal: str, body: bytes, limits: Limits) -> tuple[bytes, int, Verdict]:
    """The exact path: strict parse, shape and id checks naming JSON paths, then protobuf's parser.

    The result is the protobuf request (checked against the limits like any other), so no
    decoder reads this JSON again: whatever it accepts here is what gets stored.
    """
    doc = parse_json_strict(body)
    ids = _json_remove_bad_ids(signal, doc)
    pb = doc_to_request(signal, doc).SerializeToString()
    # parsed back with upb, as every decoder will: what upb refuses (nesting past its limit, which
    # json_format counts differently) is refused now, not after the ack
    return _checked(signal, parse_protobuf(signal, pb), pb, limits, ids, size=len(body))


def parse_json_strict(body: bytes) -> dict[str, Any]:
    """Parse like :func:`parse_json`, and refuse a duplicate key anywhere (400, ``duplicate_key``).

    Python's parser with a pairs hook (orjson keeps the last duplicate silently); a document
    nested too deep for it is refused (``too_deep``).
    """
    try:
        doc = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RefusedContent:
        raise
    except RecursionError as exc:
        raise RefusedContent("invalid JSON: nested too deep", reason="too_deep") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError(f"invalid OTLP/JSON: expected an object at the top level, got {_kind(doc)}")
    return doc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, value in pairs:  # a lone surrogate (\ud800) is no text: protobuf cannot hold it
        if "\x00" in key:  # protobuf's JSON parser would read "name\u0000" as "name"
            raise DecodeError(f"invalid OTLP/JSON: a NUL character in the key {key!r:.60}")
        for text in (key, value) if type(value) is str else (key,):
            if not text.isascii():
                try:
                    text.encode()
                except UnicodeEncodeError:
                    raise DecodeError(f"invalid JSON: a lone surrogate in {key!r:.60}") from None
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise RefusedContent(f"invalid JSON: duplicate key {dup!r} in one object", reason="duplicate_key")
    return out


def _no_constant(name: str) -> Any:
    raise DecodeError(f"invalid JSON: {name} is not a JSON value")


def _json_remove_bad_ids(signal: str, doc: dict[str, Any]) -> Verdict:
    """Shape-check ``doc`` naming JSON paths; remove spans / log records with invalid ids."""
    top, scope, leaf = _TOP[signal], _SCOPE[signal], _ITEMS[signal]
    verdict = Verdict()
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
                    _count_metric(_obj(m, f"{spath}.metrics[{mi}]"), f"{spath}.metrics[{mi}]")
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
                    verdict.first = verdict.first or exc.message
                    verdict.reject("invalid_id", 1, "")
                    continue
                keep.append(item)
            if len(keep) != len(leaves):
                ss[leaf] = keep
    return verdict


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
