"""``otel-ai anomalies``: list anomalies, or replay detection over a past range."""

from __future__ import annotations

import argparse
from typing import Any

from otel_ai.cli.client import add_api_args, call, print_json, run, table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("anomalies", help="list anomalies found by the running daemon")
    add_api_args(p)
    p.add_argument("--since", help="RFC 3339 or relative (1h, 7d); default 1h")
    p.add_argument("--until", help="RFC 3339 or relative; default now")
    p.add_argument("--service", help="only anomalies involving this service")
    p.add_argument("--status", choices=("open", "closed"))
    p.add_argument("--source", choices=("live", "replay", "all"), help="default live (replays: detect)")
    p.set_defaults(func=run(cmd_list))
    s = p.add_subparsers(dest="anomalies_cmd")
    d = s.add_parser("detect", help="score every window of [since, until) and store what is found")
    add_api_args(d)
    d.add_argument("--since", required=True)
    d.add_argument("--until", required=True)
    d.add_argument("--train-since", help="train a model on [train-since, train-until) (default: live model)")
    d.add_argument("--train-until")
    d.set_defaults(func=run(cmd_detect))
    r = s.add_parser("retrain", help="train a new model now on the history there is")
    add_api_args(r)
    r.set_defaults(func=run(cmd_retrain))


def _render(anomalies: list[dict[str, Any]]) -> str:
    rows = []
    for a in anomalies:
        ent = a["entity"]
        what = ent["service"] + (f" {ent['operation']}" if ent.get("operation") else "")
        what += f"→{ent['target']}" if ent.get("target") else ""
        top = a["features"][0] if a["features"] else {}
        causes = ", ".join(f"{r['service']}" for r in a["root_causes"][:3]) or "-"
        rows.append([a["id"], a["opened_at"], a["closed_at"] or "open", a["severity"], a["score"], what,
                     top.get("text", top.get("name", "")), causes])  # fmt: skip
    hdr = ["ID", "OPENED", "CLOSED", "SEVERITY", "SCORE", "ENTITY", "TOP FEATURE", "ROOT CAUSES"]
    return table(rows, hdr) if rows else "no anomalies"


def _model_line(model: dict[str, Any] | None) -> str:
    if not model:
        return ""
    line = f"model: {model.get('text', model.get('state'))}; next retrain {model.get('next_retrain_at')}"
    if model.get("how_to_get_there_sooner"):
        line += f"\n  sooner: {model['how_to_get_there_sooner']}"
    return line


def cmd_list(args: argparse.Namespace) -> int:
    params = {"since": args.since, "until": args.until, "service": args.service, "status": args.status,
              "source": args.source}  # fmt: skip
    data = call(args, "GET", "/api/v1/anomalies", params=params)
    if args.json:
        print_json(data)
    else:
        print(_model_line(data.get("model")))
        print(_render(data["anomalies"]))
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    data = call(args, "POST", "/api/v1/anomalies/retrain", body={}, timeout=600.0)
    print_json(data) if args.json else print(_model_line(data.get("model")))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    body = {"since": args.since, "until": args.until, "train_since": args.train_since,
            "train_until": args.train_until}  # fmt: skip
    data = call(args, "POST", "/api/v1/anomalies/detect", body=body, timeout=600.0)
    print_json(data) if args.json else print(_render(data["anomalies"]))
    return 0
