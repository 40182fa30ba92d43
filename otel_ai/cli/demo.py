"""``otel-ai demo``: Astronomy-Shop traffic (live or backfilled) with optional fault scenarios."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from otel_ai.cli.demo_prep import prepare_anomaly
from otel_ai.cli.progress import Reporter
from otel_ai.demo import (
    PROTOCOLS,
    SCENARIOS,
    RunResult,
    TimelineEvent,
    generate,
    load_timeline,
    parse_duration,
)
from otel_ai.demo.export import default_endpoint, unreachable
from otel_ai.errors import ConfigError

LIVE_RATE = 5.0  # requests/s: ~35 spans/s, a few % of one core
# A backfill at the live rate: the history the detector learns from then looks like the live
# traffic that follows it (a slower backfill makes the live demo look like a traffic surge).
BACKFILL_RATE = LIVE_RATE
# How long the queued telemetry may take to go out at the end before it is counted as dropped.
DRAIN_S = {"live": 10.0, "backfill": 60.0}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="emit Astronomy-Shop-shaped traffic with the official OTel SDK exporters",
        description="Emit OpenTelemetry-demo-shaped traces, logs and metrics to an OTLP endpoint.",
    )
    env_protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    p.add_argument(
        "--endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        help="OTLP endpoint (env OTEL_EXPORTER_OTLP_ENDPOINT; default http://127.0.0.1:4317 for grpc, :4318 for http)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=env_protocol if env_protocol in PROTOCOLS else "grpc",
        help="OTLP transport and encoding (env OTEL_EXPORTER_OTLP_PROTOCOL; default grpc)",
    )
    p.add_argument("--scenario", choices=sorted(SCENARIOS), help="inject this fault from the start")
    p.add_argument("--magnitude", default="medium", help="low | medium | severe | a number (scenario units)")
    p.add_argument(
        "--rate",
        type=float,
        help=f"requests per (simulated) second, live and backfill alike (default {LIVE_RATE:g})",
    )
    p.add_argument(
        "--duration", help="stop after this long: seconds (300) or 90s, 15m (default: until Ctrl-C)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same traffic")
    p.add_argument("--timeline", type=Path, help="YAML list of {start, duration, scenario, magnitude}")
    p.add_argument(
        "--backfill", help="write this much history ending now (e.g. 7d) as fast as accepted, then exit"
    )
    p.add_argument(
        "--ground-truth", type=Path, help="where to write the ground-truth JSON (default data/demo/…)"
    )
    p.add_argument(
        "--json-endpoint",
        help="encoding-drift: where the OTLP/JSON instance sends (default: --endpoint for http, else port 4318)",
    )
    p.add_argument(
        "--api-url",
        help="the daemon's API, for the anomaly scenario's model (env OTEL_AI_API_URL; default :8700)",
    )
    p.add_argument("--token", help="the API's bearer token (env OTEL_AI_API_TOKEN)")
    p.add_argument("--no-logs", action="store_true", help="do not emit log records")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_demo)


def _timeline(args: argparse.Namespace, total: timedelta | None) -> list[TimelineEvent]:
    events = load_timeline(args.timeline) if args.timeline else []
    if args.scenario:
        magnitude: str | float = args.magnitude
        with contextlib.suppress(ValueError):
            magnitude = float(args.magnitude)
        events.append(TimelineEvent(timedelta(0), total or timedelta(days=365), args.scenario, magnitude))
    return events


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"otel-ai demo: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    backfill = parse_duration(args.backfill, "--backfill") if args.backfill else None
    duration = parse_duration(args.duration, "--duration") if args.duration else None
    if backfill is not None:
        start: datetime | None = now - backfill
        end: datetime | None = now
        rate = args.rate if args.rate is not None else BACKFILL_RATE
    else:
        start = now
        end = now + duration if duration else None
        rate = args.rate if args.rate is not None else LIVE_RATE
    if not rate > 0:
        raise ConfigError("--rate", f"must be > 0 requests per second, got {rate:g}")
    timeline = _timeline(args, backfill or duration)
    gt = args.ground_truth or Path("data/demo") / f"ground-truth-{now:%Y%m%dT%H%M%SZ}.json"
    endpoint = args.endpoint or default_endpoint(args.protocol)
    why = unreachable(endpoint)
    if why is not None:
        print(
            f"otel-ai demo: cannot connect to {endpoint} ({why}). Is `otel-ai serve` listening there? "
            "Set --endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) and --protocol to match its receiver.",
            file=sys.stderr,
        )
        return 1
    history = SCENARIOS[args.scenario].history_s if args.scenario else None
    if history and backfill is None:  # the anomaly scenario: a trained model before the fault
        ready = prepare_anomaly(
            args, endpoint=endpoint, protocol=args.protocol, rate=rate, history_s=history, quiet=args.quiet
        )
        if ready is None:
            return 1
        now = ready  # the live run continues the history without a gap
        start, end = now, (now + duration if duration else None)
    stop = threading.Event()
    _install_signals(stop)
    _setup_logging()
    mode = f"backfill {args.backfill} ({start:%Y-%m-%d %H:%M} → {end:%H:%M} UTC)" if backfill else "live"
    if not args.quiet:
        print(
            f"otel-ai demo: {mode}, {rate:g} req/s, protocol {args.protocol} → {endpoint}, seed {args.seed}"
        )
        for ev in timeline:
            print(f"  scenario {ev.scenario} ({ev.magnitude}) at +{ev.offset} for {ev.duration}")
        print(f"  ground truth → {gt}")
    total = (backfill or duration or timedelta(0)).total_seconds() or None
    wire = (
        backfill is not None
        and args.protocol != "http/json"
        and not any(ev.scenario == "encoding-drift" for ev in timeline)
    )
    start_ns = int((start or now).timestamp() * 1e9)
    label = "backfill" if backfill else "live"
    with contextlib.ExitStack() as stack:
        bar = None if args.quiet else stack.enter_context(Reporter(label, total))

        def progress(res: RunResult) -> None:
            if bar is not None:
                sim = datetime.fromtimestamp(res.end_ns / 1e9, UTC)
                bar.update(
                    (res.end_ns - start_ns) / 1e9,
                    f"{sim:%m-%d %H:%M:%S}Z  {res.spans:,} spans, {res.exported_spans:,} exported"
                    + (f", {res.dropped_spans:,} dropped" if res.dropped_spans else ""),
                )

        res = generate(
            start, end, endpoint=endpoint, protocol=args.protocol, rate=rate, seed=args.seed, timeline=timeline,
            realtime=backfill is None, ground_truth_path=gt, logs=not args.no_logs, stop=stop, on_step=progress,
            drain_timeout_s=DRAIN_S[label], encoder="wire" if wire else "sdk", json_endpoint=args.json_endpoint,
        )  # fmt: skip
    if not args.quiet:
        print(summary(res))
    return 0 if res.exported_spans == res.spans else 1


def summary(res: RunResult) -> str:
    """The closing line; its span figures add up: generated = exported + dropped + unsent."""
    parts = [f"{res.exported_spans:,} exported", f"{res.dropped_spans:,} dropped (export failed)"]
    if res.unsent_spans:
        parts.append(f"{res.unsent_spans:,} unsent (still queued at exit)")
    return (
        f"done: {res.spans:,} spans generated = {' + '.join(parts)}; {res.requests:,} requests, "
        f"{res.logs:,} logs in {res.wall_seconds:.1f} s wall / {res.cpu_seconds:.1f} s CPU "
        f"({res.spans_per_cpu_second:,.0f} spans per CPU-second)"
    )


class _Throttle(logging.Filter):
    """Let one message per logger through every ``period`` seconds (the SDK logs every retry)."""

    def __init__(self, period: float = 30.0) -> None:
        super().__init__()
        self.period = period
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.last.get(record.name, -1e9) < self.period:
            self.suppressed[record.name] = self.suppressed.get(record.name, 0) + 1
            return False
        self.last[record.name] = now
        n = self.suppressed.pop(record.name, 0)
        if n:
            record.msg = f"{record.msg} ({n} similar messages suppressed)"
        return True


class _Stderr:
    """Whatever ``sys.stderr`` is now: under the progress bar, rich's proxy prints above the bar."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _setup_logging() -> None:
    handler = logging.StreamHandler(_Stderr())  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("otel-ai demo: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Throttle())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def _install_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "otel-ai demo: stopping; sending what is queued (Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
