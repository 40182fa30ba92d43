"""Detector time and peak memory over a 1-hour window of N spans (default 1M, then 10M).

Builds a planted-pattern app (``otel_ai.demo.patterns``, N+1 planted) sized to N spans inside one
hour, writes it through the daemon's writer into a temporary chDB store, then runs every
detector once over that hour and prints per-detector time, the total, the largest
``memory_usage`` any detector query reached (``system.query_log``) and the process RSS growth.
Targets at 1M spans: < 10 s and < 512 MiB query peak.

    .venv/bin/python bench/insights.py [--spans 1000000 3000000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otel_ai.analysis.insights.detectors import build_detectors
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import DetectContext, Window
from otel_ai.demo import patterns
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter

SPANS_PER_TRACE = 10.5  # measured mean of the planted apps
CHUNK_TRACES = 20_000


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def measure(st: Storage, start: datetime) -> dict[str, float]:
    ctx = DetectContext(st, Window(start, start + timedelta(hours=1)))
    t_all = time.perf_counter()
    t_query0 = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    rss0 = _rss_mib()
    times = {}
    for d in build_detectors(DetectorsConfig()):
        t = time.perf_counter()
        found = d.detect(ctx)
        times[d.kind] = (time.perf_counter() - t, len(found))
    total = time.perf_counter() - t_all
    peak = _query_peak(st, t_query0)
    for kind, (sec, n) in times.items():
        print(f"  {kind:26} {sec:7.3f} s  {n} findings")
    print(f"  total {total:.2f} s; query peak {peak:.0f} MiB; RSS growth {_rss_mib() - rss0:.0f} MiB")
    return {"total_s": total, "query_peak_mib": peak}


def _query_peak(st: Storage, since: datetime) -> float:
    try:
        st.command("SYSTEM FLUSH LOGS")
        rows = st.query(
            "SELECT max(memory_usage) FROM system.query_log WHERE event_time >= {t:DateTime} AND type = 'QueryFinish'"
            " AND query LIKE '%otel_traces%'",
            {"t": since},
        )
        return float(rows[0][0] or 0) / 2**20
    except Exception:
        return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = ap.parse_args()
    for n in args.spans:
        st = Storage(f"chdb://{tempfile.mkdtemp(prefix='insights-bench-')}/store", f"b{n}")
        st.start()
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        t = time.perf_counter()
        written = fill(st, n, start)
        print(f"{written} spans in one hour, written in {time.perf_counter() - t:.0f} s")
        measure(st, start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
