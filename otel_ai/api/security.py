"""Optional bearer token for ``/api/*`` (compared in constant time, never logged)."""

from __future__ import annotations

import hmac

from fastapi import Request

from otel_ai.errors import Unauthorized


def require_token(request: Request) -> None:
    token: str | None = request.app.state.ctx.config.api.token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("missing or invalid bearer token")  # 401 + WWW-Authenticate (api/errors.py)
