"""``GET /api/v1/traces``: trace search (service, operation, status, minimum duration, window).

Two steps keep a search cheap on a large store:

1. *Candidates*: traces whose spans fall in a slice at the end of the window, filtered and ranked
   newest first. The slice starts at 5 minutes and widens fourfold until it holds ``limit`` traces or
   covers the window, so a search for recent traces reads the last minutes only. A service or
   operation filter uses the table's primary key (``ServiceName, SpanName, …``).
2. *Figures*: for the chosen trace ids only, every span of each trace (time-bounded through the
   ``otel_traces_trace_id_ts`` lookup table, as the single-trace lookup does) gives the root,
   duration, span and error counts and the services.

A trace's status is its worst span status: ``error`` if any span has status Error, else ``ok`` if
any span has status Ok, else ``unset``. Its duration runs from its first span's start to its last
span's end.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from otel_ai.api.params import time_window
from otel_ai.errors import InvalidParameter
from otel_ai.timeutil import ns_to_rfc3339

router = APIRouter(tags=["traces"])

TraceStatus = Literal["error", "ok", "unset"]
STATUSES: tuple[TraceStatus, ...] = ("error", "ok", "unset")
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
FIRST_SLICE = timedelta(minutes=5)
WIDEN = 4

_STATUS_HAVING: dict[str, str] = {
    "error": "countIf(StatusCode = 'Error') > 0",
    "ok": "countIf(StatusCode = 'Error') = 0 AND countIf(StatusCode = 'Ok') > 0",
    "unset": "countIf(StatusCode IN ('Error', 'Ok')) = 0",
}
_SLICE = "Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)}"

FIGURES_SQL = """
WITH
    (SELECT min(Start) FROM {db:Identifier}.otel_traces_trace_id_ts WHERE TraceId IN {ids:Array(String)}) AS t_start,
    (SELECT max(End) + 1 FROM {db:Identifier}.otel_traces_trace_id_ts WHERE TraceId IN {ids:Array(String)}) AS t_end
SELECT
    TraceId,
    min(toUnixTimestamp64Nano(Timestamp)) AS start_ns,
    max(toUnixTimestamp64Nano(Timestamp) + Duration) AS end_ns,
    uniqExact(SpanId) AS spans,
    uniqExactIf(SpanId, StatusCode = 'Error') AS errors,
    uniqExactIf(SpanId, StatusCode = 'Ok') AS oks,
    countIf(ParentSpanId = '') > 0 AS has_root,
    argMinIf(ServiceName, Timestamp, ParentSpanId = '') AS root_service,
    argMinIf(SpanName, Timestamp, ParentSpanId = '') AS root_name,
    argMin(ServiceName, Timestamp) AS first_service,
    argMin(SpanName, Timestamp) AS first_name,
    arraySort(groupUniqArray(ServiceName)) AS services
FROM {db:Identifier}.otel_traces
WHERE TraceId IN {ids:Array(String)} AND Timestamp >= t_start AND Timestamp <= t_end
GROUP BY TraceId
"""


class TraceSummary(BaseModel):
    trace_id: str
    root_service: str
    root_operation: str
    start_time: str
    duration_ms: float
    span_count: int
    error_count: int
    services: list[str]


class TraceSearchResponse(BaseModel):
    traces: list[TraceSummary]


def candidates_sql(service: str | None, operation: str | None, status: str | None, min_duration: bool) -> str:
    """The candidate query for one slice; only fixed SQL fragments are chosen here, values are bound."""
    span_filter = []
    if service is not None:
        span_filter.append("ServiceName = {service:String}")
    if operation is not None:
        span_filter.append("SpanName = {operation:String}")
    where = ["TraceId != ''"]
    if span_filter:
        where.append(
            "TraceId IN (SELECT TraceId FROM {db:Identifier}.otel_traces"
            f" WHERE {' AND '.join(span_filter)} AND {_SLICE})"
        )
    having = []
    if status is not None:
        having.append(_STATUS_HAVING[status])
    if min_duration:
        having.append(
            "max(toUnixTimestamp64Nano(Timestamp) + Duration) - min(toUnixTimestamp64Nano(Timestamp))"
            " >= {min_ns:UInt64}"
        )
    return (
        "SELECT TraceId, min(Timestamp) AS first FROM {db:Identifier}.otel_traces"
        f" PREWHERE {_SLICE} WHERE {' AND '.join(where)} GROUP BY TraceId"
        + (f" HAVING {' AND '.join(having)}" if having else "")
        + " ORDER BY first DESC, TraceId LIMIT {limit:UInt32}"
    )


def _text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise InvalidParameter(name, "must not be empty")
    return value


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in STATUSES:
        raise InvalidParameter("status", f"expected one of {', '.join(STATUSES)}, got {value!r}")
    return value


def _min_duration_ns(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        raise InvalidParameter(
            "min_duration_ms", f"expected a number of milliseconds, got {value!r}"
        ) from None
    if not math.isfinite(ms) or ms < 0:
        raise InvalidParameter("min_duration_ms", f"must be a finite number ≥ 0, got {value!r}")
    return int(ms * 1_000_000)


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter("limit", f"expected an integer, got {value!r}") from None
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidParameter("limit", f"must be between 1 and {MAX_LIMIT}, got {n}")
    return n


def _trace_status(errors: int, oks: int) -> str:
    return "error" if errors else "ok" if oks else "unset"


def search_traces(
    storage: Any,
    start: datetime,
    end: datetime,
    *,
    service: str | None = None,
    operation: str | None = None,
    status: str | None = None,
    min_duration_ns: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[TraceSummary]:
    """Traces matching the filters within ``[start, end)``, newest first (see the module docstring)."""
    sql = candidates_sql(service, operation, status, min_duration_ns is not None)
    params: dict[str, Any] = {"db": storage.database, "limit": limit, "end": end.replace(tzinfo=None)}
    if service is not None:
        params["service"] = service
    if operation is not None:
        params["operation"] = operation
    if min_duration_ns is not None:
        params["min_ns"] = min_duration_ns
    width = FIRST_SLICE
    while True:
        slice_start = max(start, end - width)
        params["start"] = slice_start.replace(tzinfo=None)
        ids = [str(r[0]) for r in storage.query(sql, params)]
        if len(ids) >= limit or slice_start <= start:
            break
        width *= WIDEN
    if not ids:
        return []
    out = []
    for r in storage.query(FIGURES_SQL, {"db": storage.database, "ids": ids}):
        (tid, start_ns, end_ns, spans, errors, oks, has_root, root_svc, root_name,
         first_svc, first_name, services) = r  # fmt: skip
        if status is not None and _trace_status(int(errors), int(oks)) != status:
            continue  # a span outside the slice changed the trace's status
        out.append(
            TraceSummary(
                trace_id=str(tid),
                root_service=str(root_svc if has_root else first_svc),
                root_operation=str(root_name if has_root else first_name),
                start_time=ns_to_rfc3339(int(start_ns)),
                duration_ms=round((int(end_ns) - int(start_ns)) / 1e6, 3),
                span_count=int(spans),
                error_count=int(errors),
                services=[str(s) for s in services],
            )
        )
    out.sort(key=lambda t: (t.start_time, t.trace_id), reverse=True)
    return out


@router.get(
    "/traces",
    response_model=TraceSearchResponse,
    summary="Search traces by service, operation, status and minimum duration, newest first",
)
def get_traces(
    request: Request,
    service: str | None = Query(None, description="a span of this service is in the trace"),
    operation: str | None = Query(None, description="a span with this name (of the service, if given)"),
    status: str | None = Query(None, description="error | ok | unset: the trace's worst span status"),
    min_duration_ms: str | None = Query(None, description="trace duration at least this many ms"),
    since: str | None = Query(None, description="window start: RFC 3339 or a duration (15m); default 1h"),
    until: str | None = Query(None, description="window end (exclusive); default now"),
    limit: str | None = Query(
        None, description=f"at most this many traces (default {DEFAULT_LIMIT}, max {MAX_LIMIT})"
    ),
) -> TraceSearchResponse:
    ctx = request.app.state.ctx
    start, end = time_window(since, until, max_days=ctx.config.api.max_window_days)
    found = search_traces(
        ctx.storage,
        start,
        end,
        service=_text("service", service),
        operation=_text("operation", operation),
        status=_status(status),
        min_duration_ns=_min_duration_ns(min_duration_ms),
        limit=_limit(limit),
    )
    return TraceSearchResponse(traces=found)
