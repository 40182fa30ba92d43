"""``otel-ai status``: the daemon's status page."""

from __future__ import annotations

import argparse

from otel_ai.cli.client import add_api_args, call, print_json, run


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the running daemon's status")
    add_api_args(p)
    p.set_defaults(func=run(cmd_status))


def cmd_status(args: argparse.Namespace) -> int:
    print_json(call(args, "GET", "/api/v1/status"))
    return 0
