"""``/docs`` (Swagger UI) and ``/redoc`` served entirely by the daemon: no CDN, works offline.

The JavaScript and CSS come from the ``fastapi-offline`` wheel, which ships Swagger UI (Apache
2.0) and ReDoc (MIT) builds with their licences; FastAPI's own pages would load them from a CDN
and stay blank on an offline machine. The OpenAPI document also states our error shape: every
4xx/5xx is ``{"error": "...", "type": "..."}`` (``otel_ai/api/errors.py``) and bad parameters are 400 (never FastAPI's 422).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from otel_ai.api.schemas import ErrorResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"


def mount_docs(app: FastAPI) -> None:
    """Register ``/docs``, ``/redoc`` and their assets (create the app with ``docs_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_error_shape(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_error_shape(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's 422 ``detail`` answers by our 400 ``{"error", "type"}`` on every operation."""
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps["ErrorResponse"] = ErrorResponse.model_json_schema()
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    error = {"description": "", "content": {"application/json": {"schema": ref}}}
    for methods in schema.get("paths", {}).values():
        for op in methods.values():
            responses = op.setdefault("responses", {})
            had_params = responses.pop("422", None) is not None
            if had_params:
                responses.setdefault("400", {**error, "description": "a bad parameter, named in the message"})
            if op.get("tags") != ["health"]:
                responses.setdefault("404", {**error, "description": "not found"})
    for name in ("HTTPValidationError", "ValidationError"):
        comps.pop(name, None)
    return schema
