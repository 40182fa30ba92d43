"""Reports API: the archive (list, one report in json | md | html) and on-demand generation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from otel_ai.api.params import hex_id, time_window
from otel_ai.api.schemas import doc
from otel_ai.api.schemas_reports import Report, ReportList, report_formats
from otel_ai.errors import InvalidParameter, NotFound
from otel_ai.reports.config import FORMATS
from otel_ai.reports.content import Window
from otel_ai.reports.service import ADHOC, ReportService
from otel_ai.timeutil import parse_instant

router = APIRouter(tags=["reports"])


def _svc(request: Request) -> ReportService:
    svc = request.app.state.ctx.reports
    if svc is None:
        raise NotFound("reports are disabled on this instance (reports.enabled)")
    return svc  # type: ignore[no-any-return]


def _instant(name: str, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidParameter(name, str(exc)) from None


@router.get(
    "/reports",
    summary="Archived reports whose window overlaps [since, until), newest first",
    response_model=None,
    responses=doc(ReportList),
)
def list_reports(
    request: Request, since: str | None = None, until: str | None = None, name: str | None = None
) -> dict[str, Any]:
    start, end = _instant("since", since), _instant("until", until)
    if start is not None and end is not None and end <= start:
        raise InvalidParameter("until", "must be after since")
    if name is not None and not name.strip():
        raise InvalidParameter("name", "must not be empty")
    return {"reports": _svc(request).list(start, end, name)}


@router.get(
    "/reports/{report_id}",
    summary="One report: json (default), md or a self-contained html page",
    response_model=None,
    responses=report_formats(),
)
def get_report(request: Request, report_id: str, format: str = "json") -> Response:
    rid = hex_id("report_id", report_id, 8)
    if format not in FORMATS:
        raise InvalidParameter("format", f"expected one of {', '.join(FORMATS)}, got {format!r}")
    body, media = _svc(request).rendered(rid, format)
    return Response(body, media_type=media)


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str | None = None
    until: str | None = None
    name: str | None = None


@router.post(
    "/reports/generate",
    summary="Build a report over [since, until) now, store it and return it",
    response_model=None,
    responses=doc(Report),
)
async def generate(request: Request, body: GenerateBody) -> dict[str, Any]:
    ctx = request.app.state.ctx
    start, end = time_window(body.since, body.until, max_days=ctx.config.api.max_window_days)
    name = body.name if body.name is not None else ADHOC
    if not name.strip() or len(name) > 64:
        raise InvalidParameter("name", "must be 1 to 64 characters")
    svc = _svc(request)
    return await run_in_threadpool(svc.generate, Window(start, end), name)  # type: ignore[no-any-return]
