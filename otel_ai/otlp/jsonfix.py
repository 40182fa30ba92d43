"""OTLP/JSON → protobuf request message, with the spec's hex ids handled correctly.

``google.protobuf.json_format`` reads every ``bytes`` field as base64, so the hex ``traceId`` /
``spanId`` / ``parentSpanId`` of spans, links, log records and exemplars (spec §JSON Protobuf
Encoding) would silently become 24/12-byte garbage. We rewrite exactly those fields from hex to
base64 (with length checks) and then let ``ParseDict(ignore_unknown_fields=True)`` do the rest:
int64 as string or number, enum ints or names, lowerCamelCase keys, base64 ``bytesValue``.

This is the rare/fallback path (python decoder); the engine decoder parses JSON in ClickHouse.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError

from otel_ai.errors import DecodeError, RefusedContent
from otel_ai.otlp.jsonshape import REQUEST_TYPES, check_hex, parse_json
from otel_ai.otlp.jsonshape import json_list as _list
from otel_ai.otlp.jsonshape import json_obj as _obj

_TOP = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}
_SCOPE = {"traces": "scopeSpans", "metrics": "scopeMetrics", "logs": "scopeLogs"}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def _fix(obj: dict[str, Any], key: str, nbytes: int, path: str) -> None:
    value = obj.get(key)
    if value is None:
        return
    hexed = check_hex(value, nbytes, f"{path}.{key}", optional=True)
    obj[key] = base64.b64encode(bytes.fromhex(hexed)).decode() if hexed else ""


def fix_ids(signal: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the hex id fields of ``doc`` in place to base64 so ``json_format`` reads them right."""
    top, scope = _TOP[signal], _SCOPE[signal]
    for ri, rs in enumerate(_list(doc, top, "")):
        rpath = f"{top}[{ri}]"
        for si, ss in enumerate(_list(_obj(rs, rpath), scope, f"{rpath}.")):
            spath = f"{rpath}.{scope}[{si}]"
            ss = _obj(ss, spath)
            if signal == "traces":
                for k, span in enumerate(_list(ss, "spans", f"{spath}.")):
                    p = f"{spath}.spans[{k}]"
                    span = _obj(span, p)
                    _fix(span, "traceId", 16, p)
                    _fix(span, "spanId", 8, p)
                    _fix(span, "parentSpanId", 8, p)
                    for j, link in enumerate(_list(span, "links", f"{p}.")):
                        _fix(_obj(link, f"{p}.links[{j}]"), "traceId", 16, f"{p}.links[{j}]")
                        _fix(link, "spanId", 8, f"{p}.links[{j}]")
            elif signal == "logs":
                for k, rec in enumerate(_list(ss, "logRecords", f"{spath}.")):
                    p = f"{spath}.logRecords[{k}]"
                    _fix(_obj(rec, p), "traceId", 16, p)
                    _fix(rec, "spanId", 8, p)
            else:
                for mi, m in enumerate(_list(ss, "metrics", f"{spath}.")):
                    mpath = f"{spath}.metrics[{mi}]"
                    m = _obj(m, mpath)
                    for kind in _METRIC_KINDS:
                        data = m.get(kind)
                        if not isinstance(data, dict):
                            continue
                        for pi, dp in enumerate(_list(data, "dataPoints", f"{mpath}.{kind}.")):
                            dpath = f"{mpath}.{kind}.dataPoints[{pi}]"
                            for ei, ex in enumerate(_list(_obj(dp, dpath), "exemplars", f"{dpath}.")):
                                epath = f"{dpath}.exemplars[{ei}]"
                                _fix(_obj(ex, epath), "traceId", 16, epath)
                                _fix(ex, "spanId", 8, epath)
    return doc


def json_to_request(signal: str, body: bytes) -> Any:
    """The ``Export*ServiceRequest`` message of an OTLP/JSON body."""
    return doc_to_request(signal, parse_json(body))


def doc_to_request(signal: str, doc: dict[str, Any]) -> Any:
    """The ``Export*ServiceRequest`` message of a parsed OTLP/JSON document (its ids are rewritten)."""
    doc = fix_ids(signal, doc)
    msg = REQUEST_TYPES[signal]()
    try:
        ParseDict(doc, msg, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError, OverflowError) as exc:  # 1e999 → inf → int(): overflow
        if "recursion depth" in str(exc):
            raise RefusedContent(f"invalid OTLP/JSON: nested too deep ({exc})", reason="too_deep") from exc
        raise DecodeError(f"invalid OTLP/JSON {type(msg).__name__}: {exc}") from exc
    except RecursionError as exc:
        raise RefusedContent("invalid OTLP/JSON: nested too deep", reason="too_deep") from exc
    return msg
