"""``otel-ai llm``: generate text or JSON, list models, health, usage, conversations — all via
the daemon's ``/api/v1/llm`` API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from otel_ai.cli.client import ApiError, add_api_args, call, print_json, run, table, unreachable_message


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "llm", help="use the daemon's LLM manager (generate, models, health, usage, conversations)"
    )
    llm_sub = p.add_subparsers(dest="llm_command", required=True)

    g = llm_sub.add_parser("generate", help="generate text, or JSON with --schema/--schema-name")
    g.add_argument("prompt")
    g.add_argument(
        "--task",
        default=None,
        help="analysis | architectural-insights | anomaly-explanation | report-summary | config-management | general",
    )
    g.add_argument("--model", default=None, help="a model group or deployment name (overrides routing)")
    g.add_argument("--schema", type=Path, default=None, help="JSON Schema file for structured output")
    g.add_argument(
        "--schema-name",
        default=None,
        help="built-in schema: architectural-insight | anomaly-explanation | report-summary",
    )
    g.add_argument(
        "--data",
        type=Path,
        default=None,
        help="JSON file with telemetry/evidence, quoted into the prompt as data",
    )
    g.add_argument("--max-tokens", type=int, default=None)
    g.add_argument("--temperature", type=float, default=None)
    g.add_argument("--conversation", default=None, help="continue this conversation id")
    g.add_argument("--stream", action="store_true", help="print the reply as it arrives (SSE)")
    g.add_argument("--no-cache", action="store_true")
    add_api_args(g)
    g.set_defaults(func=run(cmd_generate))

    for name, fn, help_ in (
        ("models", cmd_models, "model groups, deployments and task chains"),
        ("health", cmd_health, "per-deployment status and breaker state"),
        ("usage", cmd_usage, "tokens and cost by provider, model and task"),
    ):
        sp = llm_sub.add_parser(name, help=help_)
        add_api_args(sp)
        sp.set_defaults(func=run(fn))

    c = llm_sub.add_parser("conversations", help="list, show, create or delete conversations")
    c.add_argument("action", choices=["list", "show", "create", "delete"])
    c.add_argument("id", nargs="?", default=None)
    c.add_argument("--system", default=None)
    c.add_argument("--title", default="")
    add_api_args(c)
    c.set_defaults(func=run(cmd_conversations))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ApiError(f"{what} {path}: {exc}") from exc


def cmd_generate(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "prompt": args.prompt,
        "task": args.task,
        "model": args.model,
        "schema_name": args.schema_name,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "conversation_id": args.conversation,
    }
    if args.schema:
        body["schema"] = _read_json(args.schema, "--schema")
    if args.data:
        body["data"] = _read_json(args.data, "--data")
    if args.no_cache:
        body["cache"] = False
    body = {k: v for k, v in body.items() if v is not None}
    if not args.stream:
        resp = call(args, "POST", "/api/v1/llm/generate", body=body, timeout=300)
        if args.json:
            print_json(resp)
        else:
            print(json.dumps(resp["json"], indent=2) if resp.get("json") is not None else resp["text"])
            _footer(resp)
        return 0
    return _stream(args, {**body, "stream": True})


def _footer(resp: dict[str, Any]) -> None:
    usage = resp.get("usage") or {}
    cache = " (cached)" if (resp.get("cache") or {}).get("hit") else ""
    print(
        f"-- {resp['provider']}/{resp['model']} via {resp['deployment']}{cache}: {usage.get('input_tokens', 0)} in, "
        f"{usage.get('output_tokens', 0)} out, ${resp.get('cost_usd', 0):.6f}, {resp.get('latency_ms', 0):.0f} ms",
        file=sys.stderr,
    )


def _stream(args: argparse.Namespace, body: dict[str, Any]) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    url = args.api_url.rstrip("/") + "/api/v1/llm/generate"
    try:
        with httpx.stream("POST", url, json=body, headers=headers, timeout=300) as r:
            if r.status_code >= 400:
                r.read()
                raise ApiError(f"{r.status_code}: {r.json().get('error', r.text)}")
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if event == "chunk":
                        print(data["text"], end="", flush=True)
                    elif event == "done":
                        print()
                        _footer(data)
                    elif event == "error":
                        print()
                        raise ApiError(f"stream failed: {data['error']}")
    except httpx.HTTPError as exc:
        raise ApiError(unreachable_message(args, exc)) from exc
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    data = call(args, "GET", "/api/v1/llm/models")
    if args.json:
        print_json(data)
        return 0
    rows = [
        [
            d["name"],
            d["group"],
            d["provider"],
            d["model"],
            d["context_window"],
            f"{d['input_cost_per_token']:.3g}",
            f"{d['output_cost_per_token']:.3g}",
        ]
        for d in data["deployments"]
    ]
    print(table(rows, ["deployment", "group", "provider", "model", "context", "usd/in tok", "usd/out tok"]))
    print()
    print(table([[t, " → ".join(c)] for t, c in data["tasks"].items()], ["task", "chain"]))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    data = call(args, "GET", "/api/v1/llm/health")
    if args.json:
        print_json(data)
        return 0
    rows = [
        [
            d["name"],
            d["provider"],
            d["status"],
            d["breaker"]["state"],
            d["last_latency_ms"],
            d["calls"],
            d["failures"],
            d["last_error"] or "",
        ]
        for d in data["deployments"]
    ]
    print(
        table(
            rows,
            ["deployment", "provider", "status", "breaker", "last ms", "calls", "failures", "last error"],
        )
    )
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    data = call(args, "GET", "/api/v1/llm/usage")
    if args.json:
        print_json(data)
        return 0
    rows = [
        [
            r["provider"],
            r["model"],
            r["requests"],
            r["cache_hits"],
            r["errors"],
            r["input_tokens"],
            r["output_tokens"],
            f"{r['cost_usd']:.6f}",
        ]
        for r in data["by_model"]
    ]
    print(
        table(
            rows,
            ["provider", "model", "requests", "cache hits", "errors", "tokens in", "tokens out", "cost usd"],
        )
    )
    return 0


def cmd_conversations(args: argparse.Namespace) -> int:
    base = "/api/v1/llm/conversations"
    if args.action == "list":
        data = call(args, "GET", base)
        if args.json:
            print_json(data)
        else:
            print(
                table(
                    [
                        [c["id"], c["title"], c["task"], c["message_count"], c["updated_at"]]
                        for c in data["conversations"]
                    ],
                    ["id", "title", "task", "messages", "updated"],
                )
            )
        return 0
    if args.action == "create":
        print_json(call(args, "POST", base, body={"system": args.system, "title": args.title}))
        return 0
    if not args.id:
        raise ApiError(f"conversations {args.action}: an id is required")
    print_json(call(args, "GET" if args.action == "show" else "DELETE", f"{base}/{args.id}"))
    return 0
