"""``otel-ai topology`` and ``otel-ai services``: the daemon's topology API as tables or JSON."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from otel_ai.cli.client import add_api_args, call, print_json, run, table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("topology", help="services, peers and calls between them over a window")
    add_api_args(p)
    _window_args(p)
    p.add_argument("--at", help="show the stored snapshot taken nearest before this instant")
    p.add_argument(
        "--diff",
        action="store_true",
        help="compare the window with the one of equal length before it (new/vanished/changed edges)",
    )
    p.set_defaults(func=run(cmd_topology))

    s = sub.add_parser("services", help="instrumented services with RED figures and ingest encodings")
    add_api_args(s)
    _window_args(s)
    s.add_argument("--operations", action="store_true", help="also list each service's top operations")
    s.set_defaults(func=run(cmd_services))


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="window start: RFC 3339 or a duration before now (default 1h)")
    p.add_argument("--until", help="window end: RFC 3339 or a duration before now (default now)")


def _f(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v: float) -> str:
    return f"{v * 100:.2f}%"


def cmd_topology(args: argparse.Namespace) -> int:
    if args.diff:
        data = call(
            args, "GET", "/api/v1/topology/diff", params={"b_since": args.since, "b_until": args.until}
        )
        if args.json:
            print_json(data)
        else:
            print(render_diff(data))
        return 0
    params = {"at": args.at} if args.at else {"since": args.since, "until": args.until}
    data = call(args, "GET", "/api/v1/topology", params=params)
    if args.json:
        print_json(data)
    else:
        print(render_topology(data))
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    data = call(args, "GET", "/api/v1/services", params={"since": args.since, "until": args.until})
    if args.json:
        print_json(data)
        return 0
    print(render_services(data, operations=args.operations))
    return 0


def render_topology(data: dict[str, Any]) -> str:
    w = data["window"]
    head = f"window {w['start']} .. {w['end']}"
    if data.get("snapshot_at"):
        head += f"  (snapshot taken {data['snapshot_at']})"
    head += covered(w)
    nodes = [
        [n["id"], n["kind"], n["span_count"], n["request_count"], _f(n["request_rate"], 2), n["error_count"],
         _pct(n["error_rate"]), _f(n["p50_ms"]), _f(n["p95_ms"]), _f(n["p99_ms"])]
        for n in data["nodes"]
    ]  # fmt: skip
    edges = [
        [f"{e['source']} -> {e['target']}", e["kind"], e["call_count"], e["error_count"], _pct(e["error_rate"]),
         _f(e["p50_ms"]), _f(e["p95_ms"]), _f(e["p99_ms"]), _f(e["client_p95_ms"])]
        for e in data["edges"]
    ]  # fmt: skip
    return "\n".join(
        [
            head,
            "",
            "NODES",
            table(
                nodes,
                ["id", "kind", "spans", "requests", "req/s", "errors", "err%", "p50ms", "p95ms", "p99ms"],
            ),
            "",
            "EDGES",
            table(
                edges, ["edge", "kind", "calls", "errors", "err%", "p50ms", "p95ms", "p99ms", "client p95"]
            ),
        ]
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def covered(window: dict[str, Any]) -> str:
    """Say when rates are over less than the window: the seconds data actually covers."""
    secs = window.get("covered_seconds")
    if not secs or not window.get("covered_start"):
        return ""
    length = (_instant(window["end"]) - _instant(window["start"])).total_seconds()
    if secs >= 0.95 * length:  # (nearly) the whole window: nothing to say
        return ""
    return f"  (rates over the {secs:,.0f} s with data, since {window['covered_start']})"


def render_services(data: dict[str, Any], *, operations: bool = False) -> str:
    rows = []
    for s in data["services"]:
        enc = ", ".join(f"{k}={v}" for k, v in sorted(s["encodings"].items()) if v)
        rows.append(
            [s["name"], s["span_count"], _f(s["request_rate"], 2), s["error_count"], _pct(s["error_rate"]),
             _f(s["p50_ms"]), _f(s["p95_ms"]), _f(s["p99_ms"]), enc]
        )  # fmt: skip
    out = [
        table(rows, ["service", "spans", "req/s", "errors", "err%", "p50ms", "p95ms", "p99ms", "encodings"])
    ]
    if covered(data.get("window") or {}):
        out.append(covered(data["window"]).strip())
    if operations:
        for s in data["services"]:
            ops = [
                [o["name"], o["kind"], o["span_count"], o["error_count"], _f(o["p50_ms"]), _f(o["p95_ms"])]
                for o in s["operations"]
            ]
            out += [
                "",
                f"{s['name']}:",
                table(ops, ["operation", "kind", "spans", "errors", "p50ms", "p95ms"]),
            ]
    return "\n".join(out)


def render_diff(data: dict[str, Any]) -> str:
    lines = [
        f"a {data['a']['start']} .. {data['a']['end']}  ->  b {data['b']['start']} .. {data['b']['end']}"
    ]
    lines += [f"+ node {n}" for n in data["new_nodes"]] + [f"- node {n}" for n in data["vanished_nodes"]]
    lines += [
        f"+ edge {e['source']} -> {e['target']} ({e['kind']}, {e['call_count']} calls)"
        for e in data["new_edges"]
    ]
    lines += [f"- edge {e['source']} -> {e['target']} ({e['kind']})" for e in data["vanished_edges"]]
    lines += [
        f"~ edge {c['source']} -> {c['target']}: {'; '.join(c['reasons'])}" for c in data["changed_edges"]
    ]
    if len(lines) == 1:
        lines.append("no change")
    return "\n".join(lines)
