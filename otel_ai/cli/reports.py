"""``otel-ai report`` (build one now, print or save it) and ``otel-ai reports list`` (the archive)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import httpx

from otel_ai.cli.client import ApiError, add_api_args, call, print_json, run, table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="build a report over a window now (stored in the archive) and print it")
    add_api_args(p)
    p.add_argument("--since", default="24h", help="RFC 3339 or relative (24h, 7d); default 24h")
    p.add_argument("--until", help="RFC 3339 or relative; default now")
    p.add_argument("--name", help="name stored with the report (default adhoc)")
    p.add_argument("--format", choices=("md", "html", "json"), default="md")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=run(cmd_report))

    r = sub.add_parser("reports", help="the report archive")
    s = r.add_subparsers(dest="reports_cmd", metavar="SUBCOMMAND")
    s.required = True
    ls = s.add_parser("list", help="archived reports, newest first")
    add_api_args(ls)
    ls.add_argument("--since", help="reports whose window ends after this (RFC 3339 or relative)")
    ls.add_argument("--until", help="reports whose window starts before this")
    ls.add_argument("--name", help="only this schedule (or adhoc)")
    ls.set_defaults(func=run(cmd_list))
    sh = s.add_parser("show", help="one archived report")
    add_api_args(sh)
    sh.add_argument("id")
    sh.add_argument("--format", choices=("md", "html", "json"), default="md")
    sh.add_argument("--output", "-o")
    sh.set_defaults(func=run(cmd_show))


def _fetch(args: argparse.Namespace, report_id: str, fmt: str) -> str:
    headers = {"Authorization": f"Bearer {args.token}"} if getattr(args, "token", None) else {}
    url = f"{args.api_url.rstrip('/')}/api/v1/reports/{report_id}"
    try:
        resp = httpx.get(url, params={"format": fmt}, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach the daemon at {args.api_url}: {exc}") from exc
    if resp.status_code >= 400:
        raise ApiError(f"{resp.status_code}: {resp.text}")
    return resp.text


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output} ({len(text.encode()):,} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_report(args: argparse.Namespace) -> int:
    body = {"since": args.since, "until": args.until, "name": args.name}
    doc = call(
        args, "POST", "/api/v1/reports/generate", body={k: v for k, v in body.items() if v}, timeout=300
    )
    _emit(_fetch(args, doc["id"], args.format), args.output)
    print(f"report {doc['id']}: {doc['status']}", file=sys.stderr)
    return 1 if doc["status"] == "failed" else 0


def cmd_show(args: argparse.Namespace) -> int:
    _emit(_fetch(args, args.id, args.format), args.output)
    return 0


def _row(r: dict[str, Any]) -> list[Any]:
    c = r.get("counts") or {}
    ok = sum(1 for d in r["deliveries"] if d["outcome"] == "ok")
    failed = sum(1 for d in r["deliveries"] if d["outcome"] in ("failed", "dropped"))
    return [r["id"], r["name"], r["created_at"], f"{r['window']['start']} → {r['window']['end']}", r["status"],
            f"{c.get('anomalies_opened', 0)}/{c.get('anomalies_ongoing', 0)}/{c.get('anomalies_closed', 0)}",
            f"{ok} ok, {failed} failed" if r["deliveries"] else "-"]  # fmt: skip


def cmd_list(args: argparse.Namespace) -> int:
    data = call(
        args, "GET", "/api/v1/reports", params={"since": args.since, "until": args.until, "name": args.name}
    )
    if args.json:
        print_json(data)
    elif not data["reports"]:
        print("no reports")
    else:
        hdr = ["ID", "NAME", "CREATED", "WINDOW", "STATUS", "ANOMALIES O/G/C", "DELIVERIES"]
        print(table([_row(r) for r in data["reports"]], hdr))
    return 0
