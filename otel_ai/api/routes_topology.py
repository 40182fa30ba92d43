"""Topology and services API (the contracts in docs/topology.md): windows, stored snapshots and window diffs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request

from otel_ai.analysis.topology.model import Service, ServicesResponse, Topology, TopologyDiff
from otel_ai.analysis.topology.service import TopologyService
from otel_ai.api.params import time_window
from otel_ai.errors import InvalidParameter, NotFound
from otel_ai.timeutil import parse_instant, rfc3339

router = APIRouter(tags=["topology"])

_SINCE = Query(
    None, description="window start: RFC 3339 or a duration before now (15m, 1h); default: until - 1h"
)
_UNTIL = Query(None, description="window end (exclusive): RFC 3339 or a duration before now; default: now")


def _svc(request: Request) -> TopologyService:
    svc = request.app.state.ctx.topology
    if svc is None:
        raise NotFound("topology is not running on this instance (server.role)")
    return svc  # type: ignore[no-any-return]


def _window(
    request: Request, since: str | None, until: str | None, names: tuple[str, str] = ("since", "until")
) -> tuple[datetime, datetime]:
    return time_window(since, until, max_days=request.app.state.ctx.config.api.max_window_days, names=names)


@router.get(
    "/topology",
    response_model=Topology,
    response_model_exclude_none=False,
    summary="Services, virtual peers and the calls between them over [since, until), or a stored snapshot",
)
def get_topology(
    request: Request,
    since: str | None = _SINCE,
    until: str | None = _UNTIL,
    at: str | None = Query(
        None, description="return the stored snapshot taken nearest before this instant instead"
    ),
) -> Topology:
    svc = _svc(request)
    if at is not None:
        if since is not None or until is not None:
            raise InvalidParameter("at", "use either at (a stored snapshot) or since/until (a live window)")
        try:
            when = parse_instant(at)
        except ValueError as exc:
            raise InvalidParameter("at", str(exc)) from None
        topo = svc.snapshot_at(when)
        if topo is None:
            raise NotFound(f"no topology snapshot stored at or before {rfc3339(when)}")
        return topo
    return svc.topology(*_window(request, since, until))


@router.get(
    "/topology/diff",
    response_model=TopologyDiff,
    summary="What changed between window a and window b: new/vanished nodes and edges, moved p95 or error rate",
)
def get_topology_diff(
    request: Request,
    a_since: str | None = Query(None, description="window a start; default: the window before b"),
    a_until: str | None = Query(None, description="window a end; default: b's start"),
    b_since: str | None = Query(None, description="window b start; default: b_until - 1h"),
    b_until: str | None = Query(None, description="window b end; default: now"),
) -> TopologyDiff:
    b = _window(request, b_since, b_until, ("b_since", "b_until"))
    if a_since is None and a_until is None:
        a = (b[0] - (b[1] - b[0]), b[0])
    else:
        a = _window(request, a_since or None, a_until or rfc3339(b[0]), ("a_since", "a_until"))
    return _svc(request).diff(a, b)


@router.get(
    "/services",
    response_model=ServicesResponse,
    summary="Instrumented services with RED figures, top operations and the encodings their data came in",
)
def get_services(
    request: Request, since: str | None = _SINCE, until: str | None = _UNTIL
) -> ServicesResponse:
    return _svc(request).services(*_window(request, since, until))


@router.get("/services/{name}", response_model=Service, summary="One service's RED figures over the window")
def get_service(
    request: Request, name: str, since: str | None = _SINCE, until: str | None = _UNTIL
) -> Service:
    start, end = _window(request, since, until)
    for s in _svc(request).services(start, end).services:
        if s.name == name:
            return s
    raise NotFound(f"service {name!r} sent no spans between {rfc3339(start)} and {rfc3339(end)}")
