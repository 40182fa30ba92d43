"""Structured output: lenient JSON extraction (``<think>`` blocks, ```json fences, prose around
the object) and strict JSON-Schema validation of the result."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from otel_ai.llm.errors import BadResponse, InvalidRequest

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def strip_think(text: str) -> str:
    """Drop reasoning blocks some local models emit (``<think>…</think>``, even unterminated)."""
    return _THINK.sub("", text).strip() if "<think>" in text.lower() else text


class ThinkFilter:
    """Streaming version of :func:`strip_think`: feed chunks, get only the text outside blocks."""

    def __init__(self) -> None:
        self._inside = False
        self._pending = ""

    def feed(self, text: str) -> str:
        buf, out = self._pending + text, []
        self._pending = ""
        while buf:
            tag = "</think>" if self._inside else "<think>"
            idx = buf.lower().find(tag)
            if idx < 0:
                keep = next(
                    (
                        k
                        for k in range(min(len(tag) - 1, len(buf)), 0, -1)
                        if tag.startswith(buf[-k:].lower())
                    ),
                    0,
                )
                emit, self._pending = (buf[: len(buf) - keep], buf[len(buf) - keep :]) if keep else (buf, "")
                if not self._inside:
                    out.append(emit)
                break
            if not self._inside:
                out.append(buf[:idx])
            self._inside = not self._inside
            buf = buf[idx + len(tag) :]
        return "".join(out)


def extract_json(text: str) -> Any:
    """Parse the JSON value in a model reply; raises :class:`BadResponse` when there is none."""
    cleaned = strip_think(text).strip()
    candidates = [cleaned]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(cleaned)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = cleaned.find(opener), cleaned.rfind(closer)
        if 0 <= start < end:
            candidates.append(cleaned[start : end + 1])
    for cand in candidates:
        try:
            return json.loads(cand)
        except ValueError:
            continue
    raise BadResponse(f"reply is not JSON: {cleaned[:120]!r}")


def check_schema(schema: Any) -> None:
    """Reject a malformed JSON Schema up front (→ HTTP 400), not after a model call."""
    if not isinstance(schema, dict):
        raise InvalidRequest("schema: must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(f"schema: invalid JSON Schema: {exc.message}") from exc


def validate(value: Any, schema: dict[str, Any]) -> str | None:
    """``None`` when ``value`` conforms, else a one-line error naming the path."""
    err = jsonschema.exceptions.best_match(Draft202012Validator(schema).iter_errors(value))
    if err is None:
        return None
    path = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"at {path}: {err.message}"


def parse_structured(text: str, schema: dict[str, Any]) -> Any:
    """Extract and validate; raises :class:`BadResponse` with the validation error."""
    value = extract_json(text)
    problem = validate(value, schema)
    if problem:
        raise BadResponse(f"reply does not match the schema {problem}")
    return value


def schema_instruction(schema: dict[str, Any]) -> str:
    """Prompt text for providers without native schema support (and for the repair retry)."""
    return "Answer with one JSON object only, no prose, conforming to this JSON Schema:\n" + json.dumps(
        schema, separators=(",", ":")
    )
