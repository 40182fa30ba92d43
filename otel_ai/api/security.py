"""Optional bearer token for ``/api/*`` (compared in constant time, never logged).

With ``api.protect_metrics`` / ``api.protect_docs`` the token also guards ``/metrics`` and the
API documentation (``/docs``, ``/redoc``, ``/openapi.json``); ``/healthz`` and ``/readyz`` stay open.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request

from otel_ai.errors import Unauthorized

DOC_PATHS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")


def token_ok(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def require_token(request: Request) -> None:
    token: str | None = request.app.state.ctx.config.api.token
    if not token:
        return
    if not token_ok(request.headers.get("authorization", ""), token):
        raise Unauthorized("missing or invalid bearer token")  # 401 + WWW-Authenticate (api/errors.py)


class GuardPaths:
    """ASGI middleware: the bearer token on a few paths outside ``/api`` (metrics, docs)."""

    def __init__(self, app: Any, *, token: str, paths: tuple[str, ...]) -> None:
        self.app, self.token, self.paths = app, token, paths

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") in self.paths:
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
            if not token_ok(header, self.token):
                body = b'{"error":"missing or invalid bearer token"}'
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def guarded_paths(api_cfg: Any) -> tuple[str, ...]:
    """The paths outside ``/api`` that ``api.token`` guards too (none without a token)."""
    if not api_cfg.token:
        return ()
    return (("/metrics",) if api_cfg.protect_metrics else ()) + (DOC_PATHS if api_cfg.protect_docs else ())
