"""A small client for the daemon's API, shared by the query commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

DEFAULT_API = "http://127.0.0.1:8700"


def add_api_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url",
        default=os.environ.get("OTEL_AI_API_URL", DEFAULT_API),
        help="daemon API base URL (env OTEL_AI_API_URL)",
    )
    parser.add_argument(
        "--token", default=os.environ.get("OTEL_AI_API_TOKEN"), help="bearer token (env OTEL_AI_API_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


class ApiError(Exception):
    pass


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    timeout: float = 60.0,
) -> Any:
    headers = {"Authorization": f"Bearer {args.token}"} if getattr(args, "token", None) else {}
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        resp = httpx.request(
            method, args.api_url.rstrip("/") + path, params=clean, json=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise ApiError(
            f"cannot reach the daemon at {args.api_url}: {exc}. Is `otel-ai serve` running?"
        ) from exc
    if resp.status_code >= 400:
        try:
            msg = resp.json().get("error") or resp.text
        except ValueError:
            msg = resp.text
        raise ApiError(f"{resp.status_code}: {msg}")
    return resp.json()


def run(fn: Any) -> Any:
    """Wrap a command body so API errors print one line and exit 1."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except ApiError as exc:
            print(f"otel-ai: {exc}", file=sys.stderr)
            return 1

    return wrapper


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
