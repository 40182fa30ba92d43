"""The OpenAPI document says what the API really answers: 400 (not FastAPI's 422) for a bad parameter.

Every validation failure — a FastAPI one or an :class:`~otel_ai.errors.InvalidParameter` — is
answered ``400 {"error": "<parameter>: <what is wrong>"}`` (see ``app.py``), so the generated
422 responses are replaced by that 400 and its schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what is wrong; names the parameter"}},
}
_BAD_REQUEST = {
    "description": "Bad parameter: the message names it",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def document_400s(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so each operation documents 400 instead of 422 (built once, cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for item in schema.get("paths", {}).values():
            for op in item.values():
                responses = op.get("responses") if isinstance(op, dict) else None
                if responses is not None and responses.pop("422", None) is not None:
                    responses.setdefault("400", _BAD_REQUEST)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Error", ERROR_SCHEMA)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
