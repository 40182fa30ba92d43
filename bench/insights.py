"""Detector time and memory over a 1-hour window of N spans (default 1M, then 10M).

Builds a planted-pattern app (``otel_ai.demo.patterns``, N+1 planted) of about ``--seed-spans``
spans inside one hour and writes it once through the daemon's writer; then multiplies it inside the
engine to N spans (``INSERT … SELECT … FROM seed, numbers(K)``: every copy gets new trace and span
ids — hashes of the old id and the copy number — and its traces are moved, whole, to a random
instant of the hour), so writing costs seconds per million spans instead of minutes.

Then, in a fresh process (one chDB path per process), every detector runs once over that hour and
the bench prints per-detector time, the total wall and CPU time (the embedded engine runs in this
process, so its CPU counts), the load average, and the process's peak RSS before and after. The
embedded engine keeps no query log, so the query peak is bounded instead: every detector query
runs with ``max_memory_usage`` = each of ``--limits-mib`` (default 512) and the bench says
whether every detector completed under it (a query over the limit fails with MEMORY_LIMIT_EXCEEDED).
Targets at 1M spans: < 10 s and < 512 MiB query peak.

    .venv/bin/python bench/insights.py [--spans 1000000 10000000] [--limits-mib 512 128]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from otel_ai.analysis.insights.detectors import build_detectors  # noqa: E402
from otel_ai.analysis.insights.detectors.config import DetectorsConfig  # noqa: E402
from otel_ai.analysis.insights.model import DetectContext, Window  # noqa: E402
from otel_ai.demo import patterns  # noqa: E402
from otel_ai.errors import StorageError  # noqa: E402
from otel_ai.storage import Storage  # noqa: E402
from otel_ai.storage.writer import TelemetryWriter  # noqa: E402
from otel_ai.testing.stores import storage_config  # noqa: E402

SPANS_PER_TRACE = 10.5  # measured mean of the planted apps
HOUR_NS = 3600 * 10**9
# Copies' traces start in [0, 58 min) of the hour, so a copied trace (at most ~1 min long in the
# planted apps) stays inside the hour.
SPREAD_NS = 58 * 60 * 10**9

_HASH_ID = "leftPad(lower(hex(cityHash64({col}, n))), 16, '0')"
MULTIPLY_SQL = f"""
INSERT INTO {{db:Identifier}}.otel_traces
SELECT * EXCEPT (t0, n) REPLACE (
    {_HASH_ID.format(col="TraceId")} || substring(TraceId, 17) AS TraceId,
    {_HASH_ID.format(col="SpanId")} AS SpanId,
    if(ParentSpanId = '', '', {_HASH_ID.format(col="ParentSpanId")}) AS ParentSpanId,
    arrayMap(t -> {_HASH_ID.format(col="t")} || substring(t, 17), `Links.TraceId`) AS `Links.TraceId`,
    arrayMap(s -> {_HASH_ID.format(col="s")}, `Links.SpanId`) AS `Links.SpanId`,
    Timestamp + toIntervalNanosecond(
        toInt64(cityHash64(TraceId, n) % {SPREAD_NS}) - toInt64(toUnixTimestamp64Nano(t0) - {{start:Int64}})
    ) AS Timestamp
)
FROM (SELECT * EXCEPT t0_trace FROM {{db:Identifier}}.bench_seed AS s
      INNER JOIN (SELECT TraceId AS t0_trace, min(Timestamp) AS t0 FROM {{db:Identifier}}.bench_seed
                  GROUP BY TraceId) AS f ON s.TraceId = f.t0_trace) AS seed
CROSS JOIN (SELECT number + {{first:UInt64}} AS n FROM numbers({{copies:UInt64}})) AS k
"""


class LimitedStorage(Storage):
    """A store whose every query carries extra settings (here: a memory limit per query)."""

    def __init__(self, *args: Any, extra: Mapping[str, Any], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.extra = dict(extra)

    def _with(self, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.extra, **(settings or {})}

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None,
              settings: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:  # fmt: skip
        return super().query(sql, parameters, self._with(settings))

    def query_dicts(self, sql: str, parameters: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        return super().query_dicts(sql, parameters, self._with(settings))


def fill(st: Storage, spans: int, seed_spans: int, start: datetime) -> int:
    """About ``spans`` spans in [start, start + 1h): a seed written once, multiplied in SQL."""
    t = time.perf_counter()
    app = patterns.build("n_plus_one", 0, start, timedelta(hours=1), traces=int(seed_spans / SPANS_PER_TRACE),
                         previous=False)  # fmt: skip
    TelemetryWriter(st).write(patterns.payloads(app))
    seed = len(app.spans)
    print(f"  seed: {seed} spans built and written in {time.perf_counter() - t:.1f} s")
    if spans <= seed:
        return seed
    t = time.perf_counter()
    db = {"db": st.database}
    st.command("CREATE TABLE {db:Identifier}.bench_seed ENGINE = Memory AS SELECT * FROM {db:Identifier}.otel_traces",
               db)  # fmt: skip
    copies = max(1, round(spans / seed)) - 1  # copy 0 is the seed itself
    start_ns = int(start.timestamp() * 1e9)
    step = 10  # copies per INSERT: bounded memory per statement
    for first in range(1, copies + 1, step):
        n = min(step, copies + 1 - first)
        st.command(MULTIPLY_SQL, {**db, "start": start_ns, "first": first, "copies": n})
    st.command("DROP TABLE {db:Identifier}.bench_seed", db)
    total = int(st.query("SELECT count() FROM {db:Identifier}.otel_traces", db)[0][0])
    print(f"  multiplied x{copies + 1} in SQL: {total} spans in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    st.command("OPTIMIZE TABLE {db:Identifier}.otel_traces FINAL", db)
    print(f"  merged (OPTIMIZE FINAL) in {time.perf_counter() - t:.1f} s")
    return total


def measure(st: Storage, start: datetime, limit_mib: int) -> bool:
    ctx = DetectContext(st, Window(start, start + timedelta(hours=1)))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0 = time.process_time()
    t_all = time.perf_counter()
    ok = True
    print(f"  detectors, every query under max_memory_usage = {limit_mib} MiB:")
    for d in build_detectors(DetectorsConfig()):
        t = time.perf_counter()
        try:
            found = len(d.detect(ctx))
            what = f"{found} findings"
        except StorageError as exc:
            ok = False
            what = "FAILED: " + ("memory limit exceeded" if "MEMORY_LIMIT" in str(exc) else str(exc)[:120])
        print(f"    {d.kind:26} {time.perf_counter() - t:7.3f} s  {what}")
    total = time.perf_counter() - t_all
    cpu = time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  total {total:.2f} s wall, {cpu:.2f} s CPU, load average {os.getloadavg()[0]:.1f}; "
          f"{'all completed' if ok else 'NOT all completed'} under {limit_mib} MiB per query; "
          f"process peak RSS {peak:.0f} MiB (after opening the store: {rss0:.0f} MiB)")  # fmt: skip
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--seed-spans", type=int, default=60_000, help="spans generated and written once")
    ap.add_argument("--limits-mib", type=int, nargs="+", default=[512], help="max_memory_usage per query")
    ap.add_argument("--measure", nargs=3, metavar=("DSN", "START", "LIMIT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:  # the child: detectors only, over a store filled by the parent
        limit = int(args.measure[2])
        st = LimitedStorage(storage_config(args.measure[0], "bench"), extra={"max_memory_usage": limit << 20})
        st.start()
        return 0 if measure(st, datetime.fromisoformat(args.measure[1]), limit) else 1
    for n in args.spans:
        dsn = f"chdb://{tempfile.mkdtemp(prefix='insights-bench-')}/store"
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        t = time.perf_counter()
        # Filled in a child too: one process may open one chDB path, and only once.
        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.insights import fill_store; "
                f"fill_store({dsn!r}, {n}, {args.seed_spans}, {start.isoformat()!r})")  # fmt: skip
        subprocess.run([sys.executable, "-c", code], check=True)
        print(f"{n} spans asked in one hour, written in {time.perf_counter() - t:.0f} s")
        for limit in args.limits_mib:  # a fresh process each: the first run's cold cache counts
            subprocess.run(
                [sys.executable, __file__, "--measure", dsn, start.isoformat(), str(limit)], check=False
            )
    return 0


def fill_store(dsn: str, spans: int, seed_spans: int, start: str) -> None:
    st = Storage(storage_config(dsn, "bench"))
    st.start()
    print(f"  {fill(st, spans, seed_spans, datetime.fromisoformat(start))} spans written")


if __name__ == "__main__":
    raise SystemExit(main())
