"""The FastAPI application: routers, error mapping (:mod:`otel_ai.api.errors`), auth. Built per daemon
by :func:`create_app`."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from otel_ai import __version__
from otel_ai.api import (
    routes_anomalies,
    routes_core,
    routes_insights,
    routes_llm,
    routes_reports,
    routes_service_overview,
    routes_topology,
    routes_traces,
)
from otel_ai.api.context import AppContext
from otel_ai.api.docs import mount_docs
from otel_ai.api.errors import error_response, http_error_response
from otel_ai.api.openapi import document_400s
from otel_ai.api.security import GuardPaths, guarded_paths, require_token
from otel_ai.errors import InvalidParameter, OtelAiError
from otel_ai.ui import router as ui_router


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(
        title="otel-ai",
        version=__version__,
        description="OTLP → ClickHouse daemon: traces, topology, anomalies, insights and the LLM manager.",
        docs_url=None,  # served offline by mount_docs
        redoc_url=None,
    )
    mount_docs(app)
    app.state.ctx = ctx
    if ctx.config.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=ctx.config.api.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path")]
        name = ".".join(loc) or "request"
        return error_response(InvalidParameter(name, str(err.get("msg", "invalid"))))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown paths (404) and wrong methods (405) in the API's one error shape."""
        default = {404: f"no such path: {request.url.path}",
                   405: f"method {request.method} not allowed on {request.url.path}"}  # fmt: skip
        generic = exc.detail in ("Not Found", "Method Not Allowed")
        msg = default[exc.status_code] if generic and exc.status_code in default else str(exc.detail)
        return http_error_response(exc.status_code, msg, exc.headers)

    @app.exception_handler(OtelAiError)
    async def _otel_ai_error(_: Request, exc: OtelAiError) -> JSONResponse:
        return error_response(exc)

    app.include_router(routes_core.public)
    secured = [Depends(require_token)]
    app.include_router(routes_core.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_topology.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_anomalies.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_insights.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_reports.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_llm.router, prefix="/api/v1/llm", dependencies=secured)
    app.include_router(routes_traces.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_service_overview.router, prefix="/api/v1", dependencies=secured)
    app.include_router(ui_router)  # the web UI at / (public page; its API calls carry the token)
    document_400s(app)
    if paths := guarded_paths(ctx.config.api):
        app.add_middleware(GuardPaths, token=ctx.config.api.token or "", paths=paths)
    return app
