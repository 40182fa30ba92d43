"""What a write-ahead log append costs beside a competing writer: the log as it is against a
preallocated one, side by side in one run.

    .venv/bin/python bench/wal_fsync.py [--dir DIR] [--rounds 3] [--appends 200]

The write-ahead log (``otel_ai/pipeline/spool.py``) appends each batch to its segment file and
fsyncs it before the export is acknowledged, so a lone sender waits for every fsync. An append
that grows the file also changes its size, and on ext4 that costs a journal commit, which waits
behind whatever else is being written to the disk (ClickHouse's parts and merges). A segment
written full of zeros beforehand and overwritten with ``pwrite`` + ``fdatasync`` needs no
metadata change per append. This script measures whether that helps on the machine at hand.

Two ways of appending 300 KB records (one OTLP/JSON request of 512 spans, transcoded) with a
2 ms pause between them, while a thread rewrites 64 MB files without syncing (the engine's part
writes): ``append`` = ``O_APPEND`` write + ``fsync`` (what the log does), ``prealloc`` = a
zero-filled 64 MB file, ``pwrite`` + ``fdatasync``. Rounds alternate the two; mean / p50 / p99
/ max per round, in ms. The directory must be on the disk being judged (default: the current
directory's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

RECORD = 300_000
SEGMENT = 64 << 20


def _competitor(directory: str, stop: threading.Event) -> None:
    block = os.urandom(1 << 20)
    i = 0
    while not stop.is_set():
        with open(os.path.join(directory, f"part-{i % 2}"), "wb") as fh:
            for _ in range(SEGMENT >> 20):
                fh.write(block)
        i += 1


def _appends(directory: str, mode: str, n: int) -> list[float]:
    path = os.path.join(directory, f"wal-{mode}")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "append" else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if mode == "prealloc":
            zeros = b"\0" * (1 << 20)
            for _ in range(SEGMENT >> 20):
                os.write(fd, zeros)
            os.fsync(fd)
        record, offset, out = os.urandom(RECORD), 0, []
        for _ in range(n):
            t = time.perf_counter()
            if mode == "append":
                os.write(fd, record)
                os.fsync(fd)
            else:
                os.pwrite(fd, record, offset)
                os.fdatasync(fd)
            offset += RECORD
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.002)
        return sorted(out)
    finally:
        os.close(fd)
        os.unlink(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=".", help="a directory on the disk to judge")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--appends", type=int, default=200, help="appends per round and mode (<= 200: one segment)"
    )
    args = ap.parse_args()
    n = min(args.appends, SEGMENT // RECORD)
    print(f"load average {os.getloadavg()[0]:.1f}; {n} appends of {RECORD // 1000} KB per round and mode, "
          "a competing writer rewriting 64 MB files")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        stop = threading.Event()
        threading.Thread(target=_competitor, args=(directory, stop), daemon=True).start()
        try:
            for r in range(args.rounds):
                for mode in ("append", "prealloc"):
                    lat = _appends(directory, mode, n)
                    print(f"round {r} {mode:8s} mean {statistics.mean(lat):6.2f}  p50 {lat[len(lat) // 2]:6.2f}  "
                          f"p99 {lat[int(len(lat) * 0.99)]:7.2f}  max {lat[-1]:7.2f} ms", flush=True)  # fmt: skip
        finally:
            stop.set()


if __name__ == "__main__":
    main()
