"""The FastAPI application: routers, error mapping, auth. Built per daemon by :func:`create_app`."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from otel_ai import __version__
from otel_ai.api import routes_anomalies, routes_core, routes_llm, routes_topology
from otel_ai.api.context import AppContext
from otel_ai.api.openapi import document_400s
from otel_ai.api.security import GuardPaths, guarded_paths, require_token
from otel_ai.errors import InvalidParameter, NotFound, OtelAiError, OverloadedError, StorageError


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(
        title="otel-ai",
        version=__version__,
        description="OTLP → ClickHouse daemon: traces, topology, anomalies, insights and the LLM manager.",
    )
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
        return _error(400, f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")

    @app.exception_handler(InvalidParameter)
    async def _invalid(_: Request, exc: InvalidParameter) -> JSONResponse:
        return _error(400, exc.message)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, exc.message)

    @app.exception_handler(OverloadedError)
    async def _overloaded(_: Request, exc: OverloadedError) -> JSONResponse:
        return _error(503, exc.message, {"Retry-After": str(max(1, round(exc.retry_after)))})

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        return _error(
            503 if exc.retryable else 500, exc.message, {"Retry-After": "5"} if exc.retryable else None
        )

    @app.exception_handler(OtelAiError)
    async def _other(_: Request, exc: OtelAiError) -> JSONResponse:
        return _error(503 if exc.retryable else 500, exc.message)

    app.include_router(routes_core.public)
    secured = [Depends(require_token)]
    app.include_router(routes_core.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_topology.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_anomalies.router, prefix="/api/v1", dependencies=secured)
    app.include_router(routes_llm.router, prefix="/api/v1/llm", dependencies=secured)
    document_400s(app)
    if paths := guarded_paths(ctx.config.api):
        app.add_middleware(GuardPaths, token=ctx.config.api.token or "", paths=paths)
    return app
