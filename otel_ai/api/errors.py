"""The API's one error table: error class → HTTP status (and ``Retry-After``), one body shape.

Every error answer is ``{"error": <message>, "type": <kind>}``: the message says what is wrong
(a bad parameter's message starts with its name), the kind is a snake_case name of the error
(``invalid_parameter``, ``not_found``, ``storage_error``, the LLM errors' own kinds such as
``all_providers_failed``). An error class not in the table takes the rule of its nearest base,
so every :class:`~otel_ai.errors.OtelAiError` has a status.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from fastapi.responses import JSONResponse

from otel_ai.errors import (
    InvalidParameter,
    NotFound,
    OtelAiError,
    OverloadedError,
    StorageError,
    Unauthorized,
)
from otel_ai.llm.errors import AllProvidersFailed, InvalidRequest


@dataclass(frozen=True)
class ErrorStatus:
    """``status`` (``retryable_status`` when the error is retryable) and the ``Retry-After`` header."""

    status: int
    retryable_status: int | None = None
    retry_after: Callable[[OtelAiError], str | None] | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _overloaded_retry_after(exc: OtelAiError) -> str | None:
    return str(max(1, round(getattr(exc, "retry_after", 1.0))))


ERROR_TABLE: dict[type[OtelAiError], ErrorStatus] = {
    InvalidParameter: ErrorStatus(400),
    InvalidRequest: ErrorStatus(400),  # the LLM manager's bad request (unknown task, model, schema)
    Unauthorized: ErrorStatus(401, headers=(("WWW-Authenticate", "Bearer"),)),
    NotFound: ErrorStatus(404),
    OverloadedError: ErrorStatus(503, retry_after=_overloaded_retry_after),
    StorageError: ErrorStatus(500, 503, retry_after=lambda e: "5" if e.retryable else None),
    AllProvidersFailed: ErrorStatus(503, retry_after=lambda e: "5"),
    # Everything else: a component not running on this instance or a retryable failure → 503,
    # the rest is a server-side failure → 500.
    OtelAiError: ErrorStatus(500, 503),
}


def rule_for(exc_type: type[OtelAiError]) -> ErrorStatus:
    """The table's rule for ``exc_type``: its own, else that of its nearest base in the table."""
    for cls in exc_type.__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]  # type: ignore[index]
    raise TypeError(f"{exc_type!r} is not an OtelAiError")  # pragma: no cover - OtelAiError is in it


def status_for(exc: OtelAiError) -> int:
    rule = rule_for(type(exc))
    return rule.retryable_status if exc.retryable and rule.retryable_status else rule.status


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def error_kind(exc: BaseException) -> str:
    """The ``type`` of an error body: the LLM errors' own ``error_type``, else the snake_case class
    name (``NotFound`` → ``not_found``)."""
    kind = type(exc).__dict__.get("error_type") or getattr(type(exc), "error_type", None)
    return str(kind) if isinstance(kind, str) and kind else _CAMEL.sub("_", type(exc).__name__).lower()


def error_body(message: str, kind: str) -> dict[str, str]:
    return {"error": message, "type": kind}


def error_response(exc: OtelAiError) -> JSONResponse:
    rule = rule_for(type(exc))
    headers = dict(rule.headers)
    retry_after = rule.retry_after(exc) if rule.retry_after else None
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return JSONResponse(
        error_body(exc.message, error_kind(exc)), status_code=status_for(exc), headers=headers or None
    )


def http_error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The same body for what the framework refuses itself (an unknown path: 404 ``not_found``)."""
    try:
        kind = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        kind = "http_error"
    return JSONResponse(error_body(detail, kind), status_code=status, headers=dict(headers or {}) or None)
