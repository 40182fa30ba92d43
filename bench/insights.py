"""Detector time and peak memory over a 1-hour window of N spans (default 1M, then 10M).

Builds a planted-pattern app (``otel_ai.demo.patterns``, N+1 planted) sized to N spans inside one
hour, writes it through the daemon's writer into a temporary chDB store, then runs every
detector once over that hour and prints per-detector time, the total, the largest
peak RSS of the process that ran them (a fresh process, so the figure is the detectors' and the
embedded engine's, not the generator's).
Targets at 1M spans: < 10 s and < 512 MiB query peak.

    .venv/bin/python bench/insights.py [--spans 1000000 3000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from otel_ai.analysis.insights.detectors import build_detectors  # noqa: E402
from otel_ai.analysis.insights.detectors.config import DetectorsConfig  # noqa: E402
from otel_ai.analysis.insights.model import DetectContext, Window  # noqa: E402
from otel_ai.demo import patterns  # noqa: E402
from otel_ai.storage import Storage  # noqa: E402
from otel_ai.storage.writer import TelemetryWriter  # noqa: E402
from otel_ai.testing.stores import storage_at  # noqa: E402

SPANS_PER_TRACE = 10.5  # measured mean of the planted apps
CHUNK_TRACES = 20_000


def fill(st: Storage, spans: int, start: datetime) -> int:
    """About ``spans`` spans in [start, start + 1h), written in chunks (bounded memory here)."""
    writer = TelemetryWriter(st)
    traces = int(spans / SPANS_PER_TRACE)
    written, chunk = 0, 0
    while traces > 0:
        n = min(CHUNK_TRACES, traces)
        app = patterns.build("n_plus_one", chunk, start, timedelta(hours=1), traces=n, previous=False)
        writer.write(patterns.payloads(app))
        written += len(app.spans)
        traces -= n
        chunk += 1
    return written


def measure(st: Storage, start: datetime) -> None:
    ctx = DetectContext(st, Window(start, start + timedelta(hours=1)))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0 = time.process_time()
    t_all = time.perf_counter()
    for d in build_detectors(DetectorsConfig()):
        t = time.perf_counter()
        found = d.detect(ctx)
        print(f"  {d.kind:26} {time.perf_counter() - t:7.3f} s  {len(found)} findings")
    total = time.perf_counter() - t_all
    cpu = time.process_time() - cpu0  # the embedded engine runs in this process: its CPU counts
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  total {total:.2f} s wall, {cpu:.2f} s CPU; peak RSS {peak:.0f} MiB (after opening the store: {rss0:.0f} MiB); "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--measure", nargs=2, metavar=("DSN", "START"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:  # the child: detectors only, over a store filled by the parent
        st = storage_at(args.measure[0], "bench")
        st.start()
        measure(st, datetime.fromisoformat(args.measure[1]))
        return 0
    for n in args.spans:
        dsn = f"chdb://{tempfile.mkdtemp(prefix='insights-bench-')}/store"
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        t = time.perf_counter()
        # Filled in a child too: one process may open one chDB path, and only once.
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.insights import fill_store; fill_store({dsn!r}, {n}, {start.isoformat()!r})"
        subprocess.run([sys.executable, "-c", code], check=True)
        print(f"{n} spans in one hour, written in {time.perf_counter() - t:.0f} s")
        subprocess.run([sys.executable, __file__, "--measure", dsn, start.isoformat()], check=True)
    return 0


def fill_store(dsn: str, spans: int, start: str) -> None:
    st = storage_at(dsn, "bench")
    st.start()
    print(f"{fill(st, spans, datetime.fromisoformat(start))} spans written")


if __name__ == "__main__":
    raise SystemExit(main())
