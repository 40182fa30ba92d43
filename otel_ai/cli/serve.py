"""``otel-ai serve``: run the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from otel_ai.errors import ConfigError, OtelAiError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the daemon (receivers, pipeline, analyzers, API)")
    p.add_argument("--config", help="YAML config file (env OTEL_AI_CONFIG)")
    p.add_argument(
        "--storage",
        help="ClickHouse DSN: chdb:///abs/path or http://user:pass@host:8123/db (env OTEL_AI_STORAGE)",
    )
    p.add_argument(
        "--otlp-grpc", help="OTLP/gRPC listen HOST:PORT (default 127.0.0.1:4317; env OTEL_AI_OTLP_GRPC)"
    )
    p.add_argument(
        "--otlp-http", help="OTLP/HTTP listen HOST:PORT (default 127.0.0.1:4318; env OTEL_AI_OTLP_HTTP)"
    )
    p.add_argument("--api", help="API listen HOST:PORT (default 127.0.0.1:8700; env OTEL_AI_API)")
    p.add_argument(
        "--role", choices=["all", "ingest", "analyzer"], help="what this instance runs (server.role)"
    )
    p.set_defaults(func=cmd_serve)


# Libraries that narrate routine work (job added/run, each HTTP request): raised to these levels
# unless logging.level is DEBUG, so the log shows our own lines. The scheduler warns about routine
# things too: an interval job still running at its next tick is skipped by design (one instance
# per job), and under load that happens; a job's failure is still logged (at ERROR).
QUIET_LOGGERS = {"apscheduler": logging.ERROR, "httpx": logging.WARNING, "httpcore": logging.WARNING,
                 "uvicorn.access": logging.WARNING}  # fmt: skip


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "DEBUG":
        for name, quiet in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(quiet)


def cmd_serve(args: argparse.Namespace) -> int:
    from otel_ai.config import load_config  # here, not at import: the query commands start faster
    from otel_ai.instance import claim_instance

    try:
        config = load_config(
            args.config,
            overrides={
                "storage.dsn": args.storage,
                "server.otlp_grpc": args.otlp_grpc,
                "server.otlp_http": args.otlp_http,
                "server.api": args.api,
                "server.role": args.role,
            },
        )
    except ConfigError as exc:
        print(f"otel-ai: config error: {exc}", file=sys.stderr)
        return 2
    try:  # before the heavy imports: a second daemon on this store or spool exits at once
        claims = claim_instance(config)
    except OtelAiError as exc:
        print(f"otel-ai: {exc}", file=sys.stderr)
        return 1
    _setup_logging(config.logging.level)
    from otel_ai.daemon import Daemon

    daemon = Daemon(config, claims=claims)
    try:
        asyncio.run(daemon.run())
    except OtelAiError as exc:
        print(f"otel-ai: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"otel-ai: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
