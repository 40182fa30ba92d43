"""``otel-ai`` entry point: one sub-command per module, each adding its own parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from otel_ai import __version__
from otel_ai.cli import anomalies, demo, insights, llm, reports, serve, status, topology, trace
from otel_ai.cli.parsing import SuggestingParser


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="otel-ai",
        description="OTLP → ClickHouse daemon with topology, anomalies and LLM insights.",
        root=True,
    )
    parser.add_argument("--version", action="version", version=f"otel-ai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (serve, demo, status, topology, trace, anomalies, insights, llm, reports):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
