"""Measure the generator's CPU cost: spans per CPU-second in each protocol, side by side.

    .venv/bin/otel-ai serve &                 # a daemon in another process (its CPU is not counted)
    .venv/bin/python demo/measure_cpu.py [--grpc http://127.0.0.1:4317] [--http http://127.0.0.1:4318]

CPU is ``time.process_time()`` of this process: span creation by the SDK, encoding and export
threads included. The in-memory row (no encoding, no network) is the SDK's floor.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai.demo import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grpc", default="http://127.0.0.1:4317")
    ap.add_argument("--http", default="http://127.0.0.1:4318")
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per protocol")
    ap.add_argument("--rate", type=float, default=10.0, help="requests per simulated second")
    args = ap.parse_args()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=args.minutes + 5)
    end = start + timedelta(minutes=args.minutes)
    rows = []
    for protocol, endpoint in (("in-memory", None), ("grpc", args.grpc), ("http/protobuf", args.http),
                               ("http/json", args.http)):  # fmt: skip
        kw: dict[str, object] = {}
        if endpoint is None:
            kw = {"span_exporter": InMemorySpanExporter(), "log_exporter": InMemoryLogRecordExporter()}
        res = generate(start, end, endpoint=endpoint, protocol=protocol if endpoint else "grpc", rate=args.rate,
                       seed=1, diurnal=False, **kw)  # type: ignore[arg-type]  # fmt: skip
        rows.append((protocol, res))
        print(f"{protocol:14s} spans {res.spans:7d}  dropped {res.dropped_spans}  cpu {res.cpu_seconds:6.2f} s  "
              f"wall {res.wall_seconds:6.2f} s  {res.spans_per_cpu_second:8,.0f} spans/CPU-s", flush=True)  # fmt: skip
    base = rows[0][1].spans_per_cpu_second
    print("ratio to in-memory:", ", ".join(f"{p} {r.spans_per_cpu_second / base:.2f}" for p, r in rows[1:]))


if __name__ == "__main__":
    main()
