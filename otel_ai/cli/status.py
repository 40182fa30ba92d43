"""``otel-ai status``: the daemon's status page as tables (``--json``: the raw answer)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from otel_ai.cli.client import add_api_args, call, print_json, run

# Sections rendered by a table of their own; any other top-level key is listed generically, so
# what a newer daemon adds still shows up.
_KNOWN = {"version", "role", "storage", "uptime_s", "receivers", "pipeline", "memory", "scheduler", "llm"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the running daemon's status (tables; --json for the raw answer)")
    add_api_args(p)
    p.set_defaults(func=run(cmd_status))


def cmd_status(args: argparse.Namespace) -> int:
    data = call(args, "GET", "/api/v1/status")
    if args.json:
        print_json(data)
        return 0
    console(sys.stdout).print(render(data))
    return 0


def console(file: Any) -> Console:
    """Terminal width on a terminal; wide enough not to wrap rows when piped."""
    c = Console(file=file, highlight=False, soft_wrap=False)
    if not c.is_terminal:
        c = Console(file=file, highlight=False, width=160, color_system=None)
    return c


def mib(n: Any) -> str:
    return "-" if n is None else f"{n / 1048576:,.1f} MiB"


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{seconds:.0f} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min" if s < 172800 else f"{s // 86400} d {s % 86400 // 3600} h"


def _table(title: str, *columns: str, left: int = 3) -> Table:
    """Columns before ``left`` are text (left-aligned), the rest figures (right-aligned)."""
    t = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i < left else "right", no_wrap=True)
    return t


def render(data: dict[str, Any], *, now: datetime | None = None) -> RenderableType:
    now = now or datetime.now(UTC)
    st = data.get("storage") or {}
    head = Text.assemble(
        (f"otel-ai {data.get('version', '?')}", "bold"),
        f"  role {data.get('role', '?')}  up {duration(float(data.get('uptime_s', 0)))}  storage {st.get('dsn', '?')}"
        f" (database {st.get('database', '?')}{', embedded' if st.get('embedded') else ''})",
    )
    parts: list[RenderableType] = [head, ""]
    if "receivers" in data:
        parts += [receivers(data["receivers"]), ""]
    if "pipeline" in data:
        parts += [pipeline(data["pipeline"]), ""]
    if "memory" in data:
        parts += [memory(data["memory"]), ""]
    if "scheduler" in data:
        parts += [jobs(data["scheduler"], now), ""]
    if "llm" in data:
        parts += [llm(data["llm"]), ""]
    for key in sorted(set(data) - _KNOWN):
        parts += [generic(key, data[key]), ""]
    return Group(*parts[:-1])


def receivers(rec: dict[str, Any]) -> RenderableType:
    ends = rec.get("endpoints") or {}
    title = "receivers " + ("ready" if rec.get("ready") else "NOT READY")
    title += "  " + "  ".join(f"{k} {v}" for k, v in ends.items())
    t = _table(title, "signal", "transport", "encoding", "requests", "received", "accepted", "refused",
               "rejected", "not ok")  # fmt: skip
    for signal, by_transport in sorted((rec.get("counters") or {}).items()):
        for transport, by_encoding in sorted(by_transport.items()):
            for encoding, c in sorted(by_encoding.items()):
                bad = ", ".join(f"{k} {v}" for k, v in sorted((c.get("outcomes") or {}).items()) if k != "ok")
                t.add_row(signal, transport, encoding, *(f"{c.get(k, 0):,}" for k in
                          ("requests", "items_received", "items_accepted", "items_refused", "items_rejected")),
                          bad or "-")  # fmt: skip
    if not t.row_count:
        t.add_row("(nothing received yet)", "", "", "", "", "", "", "", "")
    return t


def pipeline(p: dict[str, Any]) -> RenderableType:
    q, sp, wal = p.get("queue") or {}, p.get("spool") or {}, p.get("wal")
    t = _table(f"pipeline (ack: {p.get('ack', '?')})", "what", "now", "limit", "detail", left=1)
    t.columns[3].justify = "left"
    t.add_row("queue items", f"{q.get('items', 0):,}", f"{q.get('capacity_items', 0):,}",
              f"{q.get('batches_waiting', 0)} batches waiting")  # fmt: skip
    t.add_row("queue bytes", mib(q.get("bytes")), mib(q.get("capacity_bytes")), "")
    t.add_row("spool", mib(sp.get("bytes")), mib(sp.get("max_bytes")),
              f"{sp.get('segments', 0)} segments, {sp.get('pending_items', 0):,} items pending  {sp.get('dir', '')}")  # fmt: skip
    if isinstance(wal, dict):
        t.add_row(
            "write-ahead log", mib(wal.get("bytes")), "", f"{wal.get('pending_items', 0):,} items pending"
        )
    t.add_row("inserted", f"{p.get('inserted_items', 0):,}", "", f"{p.get('inserted_batches', 0):,} batches")
    t.add_row(
        "spooled / replayed", f"{p.get('spooled_items', 0):,}", "", f"{p.get('replayed_items', 0):,} replayed"
    )
    t.add_row("failed", f"{p.get('failed_items', 0):,}", "", "storage DOWN" if p.get("storage_down") else "")
    if p.get("last_error"):
        t.add_row("last error", "", "", f"{p.get('last_error_at') or ''} {p['last_error']}")
    return t


def memory(m: dict[str, Any]) -> RenderableType:
    t = _table("memory" + ("" if m.get("enabled") else " (guard off)"), "what", "value", "detail", left=1)
    t.columns[2].justify = "left"
    t.add_row("resident", mib(m.get("resident_bytes")), "")
    t.add_row("peak", mib(m.get("peak_resident_bytes")), "")
    if m.get("enabled"):
        t.add_row("soft limit", mib(m.get("soft_limit_bytes")),
                  "ABOVE: refusing exports" if m.get("above_soft_limit") else "")  # fmt: skip
        t.add_row("refusal periods", f"{m.get('refusal_periods', 0)}",
                  f"{m.get('purges', 0)} purges, {mib(m.get('purged_bytes'))} returned")  # fmt: skip
    return t


def jobs(sched: dict[str, Any], now: datetime) -> RenderableType:
    t = _table("scheduled jobs", "job", "next run", "in", left=2)
    for job in sched.get("jobs") or []:
        nxt = job.get("next_run")
        when = "-" if not nxt else datetime.fromisoformat(nxt)
        left = "paused" if not nxt else duration(max(0.0, (when - now).total_seconds()))  # type: ignore[operator]
        t.add_row(job.get("id", "?"), "-" if not nxt else f"{when:%Y-%m-%d %H:%M:%S}Z", left)
    if not t.row_count:
        t.add_row("(none)", "", "")
    return t


def llm(data: dict[str, Any]) -> RenderableType:
    t = _table(f"LLM deployments ({data.get('status', '?')})", "deployment", "provider", "model", "status",
               "breaker", "calls", "failures", "ewma ms")  # fmt: skip
    for d in data.get("deployments") or []:
        ewma = d.get("ewma_latency_ms")
        t.add_row(d.get("name", "?"), d.get("provider", "?"), d.get("model", "?"), d.get("status", "?"),
                  (d.get("breaker") or {}).get("state", "?"), f"{d.get('calls', 0):,}",
                  f"{d.get('failures', 0):,}", "-" if ewma is None else f"{ewma:,.0f}")  # fmt: skip
    return t


def generic(key: str, value: Any) -> RenderableType:
    t = _table(key, "key", "value", left=2)
    for k, v in _flatten(value):
        t.add_row(k or key, str(v))
    return t


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, value)]
