"""The long differential fuzz of the C decoder and transcoder (minutes; the suite runs seconds of it).

    .venv/bin/python bench/fuzz.py [--minutes 5] [--seed 1] [--out fuzz-findings]

Same oracle as ``tests/otlp/test_differential_fuzz.py`` (``otel_ai/testing/fuzzing.py``): every
mutated body gets the same verdict with and without the compiled fast paths, and an accepted one
flattens in both decoders. Each finding is written to ``--out`` (the body, and a ``.txt`` with
what disagreed); add the body to ``tests/otlp/corpus/`` once fixed, so it stays a regression test.

Under AddressSanitizer and UndefinedBehaviorSanitizer (memory errors and UB in ``_native.c``
crash the run with a report instead of passing silently):

    gcc -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \\
        -fno-sanitize-recover=undefined -std=gnu11 -I"$(python -c 'import sysconfig;print(sysconfig.get_paths()["include"])')" \\
        otel_ai/native/_native.c -o otel_ai/native/_native$(python -c 'import sysconfig;print(sysconfig.get_config_var("EXT_SUFFIX"))') -lm
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \\
        ASAN_OPTIONS=detect_leaks=0 .venv/bin/python bench/fuzz.py --minutes 10

(then rebuild the normal module: ``pip install -e .`` or ``python setup.py build_ext --inplace``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otel_ai.testing import fuzzing  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    args = ap.parse_args()
    started = time.monotonic()
    stop = started + args.minutes * 60
    total, found, seed = 0, 0, args.seed
    while time.monotonic() < stop:
        tried, findings = fuzzing.run(10_000, seed, stop_at=stop)
        total += tried
        for encoding, body, problem in findings:
            found += 1
            args.out.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha1(body).hexdigest()[:12] + (".pb" if encoding == "protobuf" else ".json")
            (args.out / name).write_bytes(body)
            (args.out / f"{name}.txt").write_text(problem + "\n")
        seed += 1
        rate = total / max(1e-9, time.monotonic() - started)
        print(f"{total:>9,} bodies  {rate:8,.0f}/s  findings {found}", flush=True)
    print(
        f"done: {total:,} mutated bodies in {args.minutes:g} min, {found} findings"
        + (f" in {args.out}/" if found else "")
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
