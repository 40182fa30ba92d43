"""The shapes OTLP/JSON walks share: the request types, the parsed top object, lists, objects and
hex ids with errors that name the JSON path. A leaf of :mod:`otel_ai.otlp`: both
:mod:`.validate` and :mod:`.jsonfix` build on it.
"""

from __future__ import annotations

from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_ai.errors import DecodeError

REQUEST_TYPES: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_HEX = frozenset("0123456789abcdefABCDEF")


def parse_json(body: bytes) -> dict[str, Any]:
    """The parsed OTLP/JSON object of ``body``; :class:`DecodeError` if it is not a JSON object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError(f"invalid OTLP/JSON: expected an object at the top level, got {json_kind(doc)}")
    return doc


def json_kind(value: Any) -> str:
    """How to name a JSON value in an error message ("an object", "a list", ...)."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def json_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{path}{key}: expected a list, got {json_kind(value)}")
    return value


def json_obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"{path}: expected an object, got {json_kind(value)}")
    return value


def check_hex(value: Any, nbytes: int, path: str, *, optional: bool) -> str:
    """Lowercase hex of a JSON id; raises :class:`DecodeError` naming ``path`` when malformed."""
    if value is None or value == "":
        if optional:
            return ""
        raise DecodeError(f"{path}: expected {nbytes * 2} hex characters, got none")
    if not isinstance(value, str):
        raise DecodeError(f"{path}: expected a hex string, got {json_kind(value)}")
    if len(value) != nbytes * 2:
        raise DecodeError(f"{path}: expected {nbytes * 2} hex characters, got {len(value)}")
    if not _HEX.issuperset(value):
        raise DecodeError(f"{path}: not a hex string")
    return value.lower()
