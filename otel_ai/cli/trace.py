"""``otel-ai trace ID``: one trace as a terminal waterfall (``GET /api/v1/traces/{id}``);
``otel-ai traces``: find traces to look at (``GET /api/v1/traces``)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from otel_ai.cli.client import add_api_args, call, print_json, run, table
from otel_ai.cli.status import console

BAR_WIDTH = 40


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trace", help="show one trace as a waterfall of its spans")
    p.add_argument("trace_id", metavar="TRACE_ID", help="32 hex characters (otel-ai traces lists some)")
    add_api_args(p)
    p.set_defaults(func=run(cmd_trace))

    s = sub.add_parser("traces", help="find traces, newest first (then: otel-ai trace TRACE_ID)")
    add_api_args(s)
    s.add_argument("--since", help="window start: RFC 3339 or a duration before now (default 1h)")
    s.add_argument("--until", help="window end: RFC 3339 or a duration before now (default now)")
    s.add_argument("--service", help="a span of this service is in the trace")
    s.add_argument("--operation", help="a span with this name is in the trace")
    s.add_argument("--status", choices=("error", "ok", "unset"), help="the trace's worst span status")
    s.add_argument("--min-duration-ms", type=float, help="traces lasting at least this long")
    s.add_argument("--limit", type=int, default=20, help="at most this many (default 20, max 1000)")
    s.set_defaults(func=run(cmd_traces))


def cmd_traces(args: argparse.Namespace) -> int:
    params = {"since": args.since, "until": args.until, "service": args.service, "operation": args.operation,
              "status": args.status, "min_duration_ms": args.min_duration_ms, "limit": args.limit}  # fmt: skip
    data = call(args, "GET", "/api/v1/traces", params=params)
    if args.json:
        print_json(data)
        return 0
    print(render_list(data.get("traces") or []))
    return 0


def render_list(traces: list[dict[str, Any]]) -> str:
    rows = [
        [t["trace_id"], t["start_time"], f"{t['duration_ms']:,.1f}", t["span_count"], t["error_count"] or "-",
         f"{t['root_service']}: {t['root_operation']}", ", ".join(t.get("services") or [])]
        for t in traces
    ]  # fmt: skip
    if not rows:
        return "no traces in the window"
    return table(rows, ["trace", "start", "ms", "spans", "errors", "root", "services"])


def cmd_trace(args: argparse.Namespace) -> int:
    data = call(args, "GET", f"/api/v1/traces/{args.trace_id}")
    if args.json:
        print_json(data)
        return 0
    console(sys.stdout).print(render(data))
    return 0


def _ns(rfc3339: str) -> int:
    """RFC 3339 with up to nanoseconds → Unix ns (``datetime`` keeps only microseconds)."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00")
    return int(whole.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


def ordered(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Depth-first (depth, span) order, children by start time; spans whose parent is missing are roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for s in sorted(spans, key=lambda s: (_ns(s["start_time"]), s["span_id"])):
        parent = s.get("parent_span_id") or ""
        if parent and parent in ids and parent != s["span_id"]:
            children.setdefault(parent, []).append(s)
        else:
            roots.append(s)
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    by_start = sorted(spans, key=lambda s: (_ns(s["start_time"]), s["span_id"]))
    # Spans caught in a cycle of bad parent ids are reached from no root: they start a tree too.
    for top in [*roots, *by_start]:
        stack = [(0, top)]
        while stack:
            depth, s = stack.pop()
            if s["span_id"] in seen:  # each span once, so a cycle cannot loop forever
                continue
            seen.add(s["span_id"])
            out.append((depth, s))
            stack += [(depth + 1, c) for c in reversed(children.get(s["span_id"], []))]
    return out


def bar(start: int, dur: int, t0: int, total: int, width: int = BAR_WIDTH) -> str:
    """The span's place on the trace's time axis, ``width`` cells wide (at least one cell)."""
    if total <= 0:
        return "█".ljust(width)
    a = min(width - 1, int((start - t0) * width / total))
    b = max(a + 1, min(width, round((start - t0 + dur) * width / total)))
    return (" " * a + "█" * (b - a)).ljust(width)


def render(data: dict[str, Any]) -> Table | Text:
    spans = data.get("spans") or []
    if not spans:
        return Text(f"trace {data.get('trace_id', '?')}: no spans")
    t0 = min(_ns(s["start_time"]) for s in spans)
    t1 = max(_ns(s["start_time"]) + int(s["duration_ns"]) for s in spans)
    services = sorted({s["service_name"] for s in spans})
    errors = sum(1 for s in spans if s.get("status_code") == "Error")
    title = (f"trace {data['trace_id']}  {len(spans)} spans, {len(services)} services, "
             f"{(t1 - t0) / 1e6:,.1f} ms" + (f", {errors} errors" if errors else ""))  # fmt: skip
    table = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    table.add_column("span", no_wrap=True)
    table.add_column("service", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column(f"0 … {(t1 - t0) / 1e6:,.1f} ms", no_wrap=True)
    for depth, s in ordered(spans):
        err = s.get("status_code") == "Error"
        start, dur = _ns(s["start_time"]), int(s["duration_ns"])
        name = "  " * depth + s["name"] + (" !" if err else "")
        table.add_row(
            Text(name, style="red" if err else ""), s["service_name"], s.get("kind", ""),
            f"{dur / 1e6:,.2f}", Text(bar(start, dur, t0, t1 - t0), style="red" if err else "cyan"),
        )  # fmt: skip
    return table
