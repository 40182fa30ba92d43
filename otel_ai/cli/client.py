"""A small client for the daemon's API, shared by the query commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from otel_ai.cli.progress import spinner

DEFAULT_API = "http://127.0.0.1:8700"
LONG_CALL_S = 60.0
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def add_api_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url",
        default=None,
        help="daemon API base URL (env OTEL_AI_API_URL; else the daemon's own OTEL_AI_API or "
        f"--config server.api on this host; default {DEFAULT_API})",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="the daemon's YAML config, read for server.api and api.token (env OTEL_AI_CONFIG)",
    )
    parser.add_argument(
        "--token", default=None, help="bearer token (env OTEL_AI_API_TOKEN; else api.token of --config)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


def _config_tree(path: str | None) -> dict[str, Any]:
    """The daemon's YAML (only the two keys the CLI needs are read; a bad file is ignored)."""
    if not path:
        return {}
    try:
        tree = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return tree if isinstance(tree, dict) else {}


def _section(tree: dict[str, Any], name: str) -> dict[str, Any]:
    sec = tree.get(name)
    return sec if isinstance(sec, dict) else {}


def _listen_to_url(listen: str) -> str:
    """``0.0.0.0:8700`` (a listen address) → ``http://127.0.0.1:8700`` (where to connect on this host)."""
    host, _, port = listen.rpartition(":")
    host = _WILDCARD.get(host.strip("[]"), host.strip("[]"))
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def resolve_api(
    api_url: str | None, config: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """Where the daemon's API is, and what said so (for error messages).

    In order: ``--api-url``; ``OTEL_AI_API_URL``; the daemon's own listen address as the daemon
    would resolve it on this host (``OTEL_AI_API``, ``OTEL_AI_SERVER__API``, then ``server.api``
    of ``--config`` / ``OTEL_AI_CONFIG``); the default.
    """
    env = os.environ if environ is None else environ
    if api_url:
        return api_url, "--api-url"
    if env.get("OTEL_AI_API_URL"):
        return env["OTEL_AI_API_URL"], "OTEL_AI_API_URL"
    for name in ("OTEL_AI_API", "OTEL_AI_SERVER__API"):
        if env.get(name):
            return _listen_to_url(env[name]), name
    path = config or env.get("OTEL_AI_CONFIG")
    listen = _section(_config_tree(path), "server").get("api")
    if isinstance(listen, str) and ":" in listen:
        return _listen_to_url(listen), f"server.api in {path}"
    return DEFAULT_API, "the default"


def resolve_token(
    token: str | None, config: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    env = os.environ if environ is None else environ
    if token:
        return token
    if env.get("OTEL_AI_API_TOKEN"):
        return env["OTEL_AI_API_TOKEN"]
    value = _section(_config_tree(config or env.get("OTEL_AI_CONFIG")), "api").get("token")
    return value if isinstance(value, str) and value else None


def resolve(args: argparse.Namespace) -> None:
    """Fill ``args.api_url`` / ``args.token`` (and ``args.api_source``) once, before a command runs."""
    if getattr(args, "api_source", None):
        return
    url, source = resolve_api(getattr(args, "api_url", None), getattr(args, "config", None))
    args.api_url, args.api_source = url, source
    args.token = resolve_token(getattr(args, "token", None), getattr(args, "config", None))


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
    resolve(args)
    headers = {"Authorization": f"Bearer {args.token}"} if getattr(args, "token", None) else {}
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    # A call allowed to run for minutes (detect, generate, ...) shows a spinner with the elapsed
    # time on a terminal, so a long wait does not look like a hang.
    waiting = spinner(f"{method} {path}") if timeout > LONG_CALL_S else contextlib.nullcontext()
    try:
        with waiting:
            resp = httpx.request(
                method,
                args.api_url.rstrip("/") + path,
                params=clean,
                json=body,
                headers=headers,
                timeout=timeout,
            )
    except httpx.HTTPError as exc:
        raise ApiError(unreachable_message(args, exc)) from exc
    if resp.status_code >= 400:
        try:
            msg = resp.json().get("error") or resp.text
        except ValueError:
            msg = resp.text
        raise ApiError(f"{resp.status_code}: {msg}")
    return resp.json()


def unreachable_message(args: argparse.Namespace, exc: Exception) -> str:
    return (
        f"cannot reach the daemon at {args.api_url} ({getattr(args, 'api_source', '?')}): {exc}. "
        "Is `otel-ai serve` running? If it listens elsewhere, pass --api-url http://HOST:PORT, "
        "set OTEL_AI_API_URL, or pass --config with the daemon's config file."
    )


def run(fn: Any) -> Any:
    """Wrap a command body so API errors print one line and exit 1."""

    def wrapper(args: argparse.Namespace) -> int:
        resolve(args)
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
