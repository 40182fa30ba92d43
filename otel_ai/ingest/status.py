"""Response bodies in the request's encoding: ``Export*ServiceResponse`` and ``google.rpc.Status``.

OTLP spec §1.3/§1.4 (opentelemetry-proto v1.11.0): a full success leaves ``partial_success``
unset (protobuf: empty message; JSON: ``{}``); every 4xx/5xx body is a ``google.rpc.Status`` in
the request's encoding; throttling adds ``google.rpc.RetryInfo`` to the status details.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from otel_ai.model import Encoding, Signal

# gRPC status codes used here (google.rpc.Code).
OK, INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE = (
    0,
    3,
    5,
    8,
    12,
    13,
    14,
)

UNAUTHENTICATED = 16

CONTENT_TYPES: dict[Encoding, str] = {"protobuf": "application/x-protobuf", "json": "application/json"}

# The encoding label of the receiver counters (``/api/v1/status``, ``/metrics``). A request whose
# Content-Type is neither OTLP encoding is refused before its body is read; it is counted as
# ``unknown`` (never attributed to protobuf) and answered with a binary ``google.rpc.Status``,
# the spec's default encoding for error bodies.
CountedEncoding = Literal["protobuf", "json", "unknown"]
UNKNOWN: CountedEncoding = "unknown"


def reply_encoding(counted: CountedEncoding) -> Encoding:
    """The encoding of the response body for a request counted under ``counted``."""
    return "json" if counted == "json" else "protobuf"


# Per signal: (response class, partial-success class, rejected field name in proto / JSON).
_RESPONSES: dict[str, tuple[Any, Any, str, str]] = {
    "traces": (
        trace_service_pb2.ExportTraceServiceResponse,
        trace_service_pb2.ExportTracePartialSuccess,
        "rejected_spans",
        "rejectedSpans",
    ),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceResponse,
        metrics_service_pb2.ExportMetricsPartialSuccess,
        "rejected_data_points",
        "rejectedDataPoints",
    ),
    "logs": (
        logs_service_pb2.ExportLogsServiceResponse,
        logs_service_pb2.ExportLogsPartialSuccess,
        "rejected_log_records",
        "rejectedLogRecords",
    ),
}
_SUCCESS: dict[Encoding, bytes] = {"protobuf": b"", "json": b"{}"}


def success_body(signal: Signal, encoding: Encoding, rejected: int = 0, message: str = "") -> bytes:
    """``Export*ServiceResponse``; ``partial_success`` only when something was rejected or warned."""
    if not rejected and not message:
        return _SUCCESS[encoding]
    resp_cls, partial_cls, field, json_field = _RESPONSES[signal]
    if encoding == "json":
        # int64 as a decimal string, as protobuf's JSON mapping renders it.
        return json.dumps({"partialSuccess": {json_field: str(rejected), "errorMessage": message}}).encode()
    resp = resp_cls(partial_success=partial_cls(**{field: rejected, "error_message": message}))
    return bytes(resp.SerializeToString())


def status_proto(code: int, message: str, retry_after_s: float | None = None) -> status_pb2.Status:
    st = status_pb2.Status(code=code, message=message)
    if retry_after_s is not None:
        info = error_details_pb2.RetryInfo(
            retry_delay=Duration(seconds=int(retry_after_s), nanos=int(retry_after_s % 1 * 1e9))
        )
        st.details.add().Pack(info)
    return st


def error_body(encoding: Encoding, code: int, message: str, retry_after_s: float | None = None) -> bytes:
    """A ``google.rpc.Status`` in ``encoding`` (JSON: proto3 JSON mapping with ``@type`` details)."""
    if encoding == "json":
        doc: dict[str, object] = {"code": code, "message": message}
        if retry_after_s is not None:
            doc["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{int(retry_after_s)}s"}
            ]
        return json.dumps(doc).encode()
    return bytes(status_proto(code, message, retry_after_s).SerializeToString())
