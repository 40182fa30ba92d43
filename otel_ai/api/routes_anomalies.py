"""Anomaly API: list, get one, replay detection over a past range."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from otel_ai.analysis.anomaly.service import AnomalyService
from otel_ai.api.params import hex_id, time_window
from otel_ai.errors import DetectorError, InvalidParameter, NotFound

router = APIRouter(tags=["anomalies"])
STATUSES = ("open", "closed")
SOURCES = ("live", "replay", "all")


def _svc(request: Request) -> AnomalyService:
    svc = request.app.state.ctx.anomaly
    if svc is None:
        raise NotFound("anomaly detection is disabled on this instance (anomaly.enabled or server.role)")
    return svc  # type: ignore[no-any-return]


def _public(a: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "entity",
        "opened_at",
        "closed_at",
        "score",
        "severity",
        "features",
        "root_causes",
        "evidence",
        "source",
    )
    out = {k: a.get(k) for k in keys}
    out["status"] = "closed" if a.get("closed_at") else "open"
    return out


@router.get("/anomalies", summary="Open and recent anomalies, newest first")
def list_anomalies(
    request: Request,
    since: str | None = None,
    until: str | None = None,
    service: str | None = None,
    status: str | None = None,
    source: str = "live",
) -> dict[str, Any]:
    """Live anomalies by default (replays of ``POST /anomalies/detect`` with ``source=replay|all``),
    plus ``"model"``: what the detector is doing (no model yet / training / trained, next retrain)."""
    start, end = time_window(since, until, max_days=request.app.state.ctx.config.api.max_window_days)
    if status is not None and status not in STATUSES:
        raise InvalidParameter("status", f"expected one of {', '.join(STATUSES)}, got {status!r}")
    if source not in SOURCES:
        raise InvalidParameter("source", f"expected one of {', '.join(SOURCES)}, got {source!r}")
    if service is not None and not service.strip():
        raise InvalidParameter("service", "must not be empty")
    svc = _svc(request)
    found = svc.list(start, end, service=service, status=status, source=source)
    return {"anomalies": [_public(a) for a in found], "model": svc.model_state()}


@router.post("/anomalies/retrain", summary="Train a new model now on the history there is")
async def retrain(request: Request) -> dict[str, Any]:
    svc = _svc(request)
    try:
        await run_in_threadpool(svc.retrain, None, force=True)
    except DetectorError as exc:  # too little history, or no spans at all
        raise InvalidParameter("history", exc.message) from None
    return {"model": svc.model_state()}


@router.get("/anomalies/{anomaly_id}", summary="One anomaly by id")
def get_anomaly(request: Request, anomaly_id: str) -> dict[str, Any]:
    aid = hex_id("anomaly_id", anomaly_id, 8)
    found = _svc(request).get(aid)
    if found is None:
        raise NotFound(f"anomaly {aid} not found")
    return _public(found)


class DetectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str
    until: str
    train_since: str | None = None
    train_until: str | None = None


@router.post("/anomalies/detect", summary="Score every window of [since, until); optional training range")
async def detect(request: Request, body: DetectBody) -> dict[str, Any]:
    max_days = request.app.state.ctx.config.api.max_window_days
    start, end = time_window(body.since, body.until, max_days=max_days)
    t0 = t1 = None
    if body.train_since is not None or body.train_until is not None:
        if body.train_since is None or body.train_until is None:
            raise InvalidParameter("train_since", "give both train_since and train_until, or neither")
        try:
            t0, t1 = time_window(body.train_since, body.train_until, max_days=max_days)
        except InvalidParameter as exc:  # name the training parameter, not since/until
            raise InvalidParameter(f"train_{exc.name}", exc.message[len(exc.name) + 2 :]) from None
    svc = _svc(request)
    try:
        found = await run_in_threadpool(svc.detect, start, end, t0, t1)
    except DetectorError as exc:  # e.g. an empty or too short training range
        raise InvalidParameter("train_since" if t0 else "since", exc.message) from None
    return {"anomalies": [_public(a) for a in found]}
