"""Insights API: list, get one, generate over any window, ask a grounded question."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from otel_ai.analysis.insights.model import Window
from otel_ai.analysis.insights.service import InsightsService, check_filters
from otel_ai.api.params import hex_id, time_window
from otel_ai.api.schemas import Answer, Insight, InsightList, doc
from otel_ai.errors import InvalidParameter, NotFound

router = APIRouter(tags=["insights"])
MAX_QUESTION = 2000


def _svc(request: Request) -> InsightsService:
    svc = request.app.state.ctx.insights
    if svc is None:
        raise NotFound("insights are disabled on this instance (insights.enabled or server.role)")
    return svc  # type: ignore[no-any-return]


def _window(request: Request, since: str | None, until: str | None) -> Window:
    start, end = time_window(since, until, max_days=request.app.state.ctx.config.api.max_window_days)
    return Window(start, end)


@router.get(
    "/insights",
    summary="Insights seen in the window, most severe first (default: open ones)",
    response_model=None,
    responses=doc(InsightList),
)
def list_insights(
    request: Request,
    since: str | None = None,
    until: str | None = None,
    status: str = "open",
    kind: str | None = None,
    service: str | None = None,
    severity: str | None = None,
) -> dict[str, Any]:
    w = _window(request, since, until)
    check_filters(status, kind, severity)
    if service is not None and not service.strip():
        raise InvalidParameter("service", "must not be empty")
    found = _svc(request).list(w.start, w.end, status=status, kind=kind, service=service, severity=severity)
    return {"insights": found}


@router.get(
    "/insights/{insight_id}", summary="One insight by id", response_model=None, responses=doc(Insight)
)
def get_insight(request: Request, insight_id: str) -> dict[str, Any]:
    insight_id = hex_id("insight_id", insight_id, 8)
    found = _svc(request).get(insight_id)
    if found is None:
        raise NotFound(f"insight {insight_id} not found")
    return found


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str | None = None
    until: str | None = None


@router.post(
    "/insights/generate",
    summary="Run the insight pipeline over [since, until) now (default: last hour)",
    response_model=None,
    responses=doc(InsightList),
)
async def generate(request: Request, body: GenerateBody | None = None) -> dict[str, Any]:
    body = body or GenerateBody()
    w = _window(request, body.since, body.until)
    return {"insights": await run_in_threadpool(_svc(request).generate, w)}


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    since: str | None = None
    until: str | None = None


@router.post(
    "/insights/ask",
    summary="A grounded answer from the window's insights, anomalies and topology",
    response_model=None,
    responses=doc(Answer),
)
async def ask(request: Request, body: AskBody) -> dict[str, Any]:
    if not body.question.strip():
        raise InvalidParameter("question", "must not be empty")
    w = _window(request, body.since, body.until)
    return await run_in_threadpool(_svc(request).ask, body.question, w)  # type: ignore[no-any-return]
