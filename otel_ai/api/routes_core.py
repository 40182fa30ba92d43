"""Health, readiness, status, Prometheus metrics and trace lookup."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from otel_ai import __version__
from otel_ai.api.context import AppContext
from otel_ai.api.params import hex_id
from otel_ai.api.schemas import Health, Readiness, Status, doc
from otel_ai.errors import NotFound
from otel_ai.timeutil import ns_to_rfc3339

public = APIRouter(tags=["health"])
router = APIRouter(tags=["traces"])


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


@public.get(
    "/healthz", summary="Liveness: 200 while the process lives", response_model=None, responses=doc(Health)
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@public.get(
    "/readyz",
    summary="Readiness: 200 only when storage answers and receivers listen",
    responses={**doc(Readiness), 503: {"model": Readiness, "description": "not ready"}},
)
def readyz(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    storage_ok = ctx.storage.ping()
    receivers_ok = True if ctx.receivers is None else bool(ctx.receivers.ready)
    body = {"storage": storage_ok, "receivers": receivers_ok}
    return JSONResponse(
        {"status": "ready" if storage_ok and receivers_ok else "not ready", **body},
        200 if storage_ok and receivers_ok else 503,
    )


@public.get("/metrics", summary="Prometheus text exposition", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    return Response(generate_latest(_ctx(request).registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/status",
    summary="Version, storage, uptime, receiver counters, queue, spool, jobs, LLM providers",
    response_model=None,
    responses=doc(Status),
)
def status(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    out: dict[str, Any] = {
        "version": __version__,
        "role": ctx.config.server.role,
        "storage": {
            "dsn": ctx.storage.redacted_dsn,
            "database": ctx.storage.database,
            "embedded": ctx.storage.embedded,
        },
        "uptime_s": round(time.time() - ctx.started_at, 3),
    }
    if ctx.receivers is not None:
        out["receivers"] = ctx.receivers.status()
    if ctx.pipeline is not None:
        out["pipeline"] = ctx.pipeline.status()
    if ctx.memory is not None:
        out["memory"] = ctx.memory.status()
    if ctx.scheduler is not None:
        out["scheduler"] = {
            "jobs": [
                {"id": job.id, "next_run": job.next_run_time.isoformat() if job.next_run_time else None}
                for job in ctx.scheduler.get_jobs()
            ]
        }
    if ctx.llm is not None and hasattr(ctx.llm, "providers_status"):
        out["llm"] = ctx.llm.providers_status()
    return out


class SpanEvent(BaseModel):
    time: str
    name: str
    attributes: dict[str, str]


class SpanLink(BaseModel):
    trace_id: str
    span_id: str
    trace_state: str
    attributes: dict[str, str]


class Span(BaseModel):
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service_name: str
    start_time: str
    duration_ns: int
    status_code: str
    status_message: str
    attributes: dict[str, str]
    resource_attributes: dict[str, str]
    scope_name: str
    scope_version: str
    events: list[SpanEvent]
    links: list[SpanLink]
    encoding: str
    transport: str = ""
    trace_state: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    scope_attributes: dict[str, str] = Field(default_factory=dict)


class TraceResponse(BaseModel):
    trace_id: str
    spans: list[Span]


# The trace-id lookup table narrows the time range first (the contrib README's two-step query),
# so a lookup does not scan every partition.
TRACE_SQL = """
WITH
    (SELECT min(Start) FROM {db:Identifier}.otel_traces_trace_id_ts WHERE TraceId = {id:String}) AS t_start,
    (SELECT max(End) + 1 FROM {db:Identifier}.otel_traces_trace_id_ts WHERE TraceId = {id:String}) AS t_end
SELECT
    TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    toUnixTimestamp64Nano(Timestamp) AS start_ns, Duration, StatusCode, StatusMessage,
    SpanAttributes, ResourceAttributes, ScopeName, ScopeVersion,
    arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS ev_ts, Events.Name, Events.Attributes,
    Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes,
    IngestEncoding, IngestTransport, TraceState, TraceFlags,
    DroppedAttributesCount, DroppedEventsCount, DroppedLinksCount, ScopeAttributes
FROM {db:Identifier}.otel_traces
WHERE TraceId = {id:String} AND Timestamp >= t_start AND Timestamp <= t_end
ORDER BY Timestamp, SpanId
LIMIT 1 BY SpanId
"""


def _span(row: tuple[Any, ...]) -> Span:
    (tid, sid, pid, name, kind, svc, start_ns, dur, code, msg, attrs, rattrs, sname, sver,
     ev_ts, ev_names, ev_attrs, l_tid, l_sid, l_ts, l_attrs, enc, transport, tstate, flags,
     d_attr, d_ev, d_ln, sattrs) = row  # fmt: skip
    return Span(
        trace_id=tid, span_id=sid, parent_span_id=pid, name=name, kind=kind, service_name=svc,
        start_time=ns_to_rfc3339(start_ns), duration_ns=int(dur), status_code=code, status_message=msg,
        attributes=dict(attrs), resource_attributes=dict(rattrs), scope_name=sname, scope_version=sver,
        events=[SpanEvent(time=ns_to_rfc3339(t), name=n, attributes=dict(a)) for t, n, a in zip(ev_ts, ev_names, ev_attrs, strict=True)],
        links=[SpanLink(trace_id=a, span_id=b, trace_state=c, attributes=dict(d)) for a, b, c, d in zip(l_tid, l_sid, l_ts, l_attrs, strict=True)],
        encoding=enc, transport=transport, trace_state=tstate, flags=int(flags),
        dropped_attributes_count=int(d_attr), dropped_events_count=int(d_ev), dropped_links_count=int(d_ln),
        scope_attributes=dict(sattrs),
    )  # fmt: skip


@router.get("/traces/{trace_id}", response_model=TraceResponse, summary="Every stored span of one trace")
def get_trace(trace_id: str, request: Request) -> TraceResponse:
    ctx = _ctx(request)
    tid = hex_id("trace_id", trace_id, 16)
    rows = ctx.storage.query(TRACE_SQL, {"db": ctx.storage.database, "id": tid})
    if not rows:
        raise NotFound(f"trace {tid} not found")
    return TraceResponse(trace_id=tid, spans=[_span(r) for r in rows])
