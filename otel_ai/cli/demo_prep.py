"""What a scenario needs before its fault starts: the ``anomaly`` scenario's history and model.

The anomaly room pages only against a trained model, and it trains by itself only after
``anomaly.min_history_s`` (6 h) of data. So ``otel-ai demo --scenario anomaly`` asks the daemon
first: with a model already trained, nothing is needed; else it writes the scenario's
``history_s`` of clean shop traffic ending now (a backfill), waits until the daemon has
inserted it, and asks it to train on it (``POST /api/v1/anomalies/retrain``). Then the live
fault starts where the history ends (the generator catches up the seconds the preparation took,
so no window looks like a traffic dip), and the detector's next cycles (every minute) open the
anomaly.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from otel_ai.cli.client import ApiError, call
from otel_ai.cli.progress import Reporter
from otel_ai.demo import RunResult, generate

HISTORY_SEED = 1_000_003  # the history's ids must not repeat the live run's (same generator, seed + this)
INSERT_WAIT_S = 180.0
RETRAIN_TIMEOUT_S = 600.0


def model_state(args: argparse.Namespace) -> dict[str, Any]:
    """The anomaly model's state as ``GET /api/v1/anomalies`` reports it."""
    state = call(args, "GET", "/api/v1/anomalies", params={"since": "5m"}).get("model")
    return state if isinstance(state, dict) else {}


def wait_inserted(args: argparse.Namespace, timeout_s: float = INSERT_WAIT_S) -> bool:
    """Until the daemon's write-ahead log and insert queue are empty (acknowledged ≠ inserted)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pipe = call(args, "GET", "/api/v1/status").get("pipeline") or {}
        wal, queue = pipe.get("wal") or {}, pipe.get("queue") or {}
        if not wal.get("pending_items") and not queue.get("items"):
            return True
        time.sleep(1.0)
    return False


def prepare_anomaly(
    args: argparse.Namespace, *, endpoint: str, protocol: str, rate: float, history_s: float, quiet: bool
) -> datetime | None:
    """Make sure the daemon has a trained anomaly model; where the live traffic should start (the
    end of the history written, or now), or ``None`` (with a message) if it cannot."""

    def say(text: str) -> None:
        if not quiet:
            print(f"otel-ai demo: {text}", flush=True)

    try:
        state = model_state(args)
        if state.get("state") == "trained":
            say(f"anomaly model {state.get('model_id', '')} is trained; the fault starts now")
            return datetime.now(UTC).replace(microsecond=0)
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(seconds=history_s)
        say(
            f"the anomaly detector has no model yet ({state.get('text', 'no model')}); writing "
            f"{timedelta(seconds=history_s)} of clean history ({start:%H:%M} → {end:%H:%M} UTC) to train one on"
        )
        with contextlib.ExitStack() as stack:
            bar = None if quiet else stack.enter_context(Reporter("history", history_s))

            def progress(res: RunResult) -> None:
                if bar is not None:
                    bar.update((res.end_ns - res.start_ns) / 1e9, f"{res.spans:,} spans")

            res = generate(
                start, end, endpoint=endpoint, protocol=protocol, rate=rate, seed=args.seed + HISTORY_SEED,
                logs=False, metrics=False, on_step=progress, drain_timeout_s=60.0,
                encoder="sdk" if protocol == "http/json" else "wire",
            )  # fmt: skip
        if res.exported_spans < res.spans:
            say(f"the history did not all go out ({res.exported_spans:,} of {res.spans:,} spans)")
            return None
        say(f"{res.spans:,} spans of history sent; waiting for the daemon to insert them")
        if not wait_inserted(args):
            say("the daemon is still inserting the history after 3 minutes; retraining anyway")
        t0 = time.monotonic()
        say("training the anomaly model (POST /api/v1/anomalies/retrain)")
        trained = call(args, "POST", "/api/v1/anomalies/retrain", timeout=RETRAIN_TIMEOUT_S)
        model = trained.get("model") if isinstance(trained.get("model"), dict) else trained
        say(
            f"model {model.get('model_id', '?')} trained in {time.monotonic() - t0:.0f} s "
            f"({model.get('confidence', '?')} confidence); the fault starts now — the detector opens the "
            "anomaly after two abnormal one-minute windows"
        )
        return end
    except ApiError as exc:
        say(f"cannot prepare the anomaly model: {exc}")
        return None
