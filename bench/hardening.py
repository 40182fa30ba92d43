"""Hardening figures: attribute handling time and the memory a request adds, before and after the bounds.

    .venv/bin/python bench/hardening.py

1. Attributes: one span with 10k / 100k / 200k attributes (distinct keys, then 1k keys repeated):
   time to validate (``check_traces``, limits lifted) and to flatten it into a Native block.
2. Memory: a resource attribute of R bytes over N spans. For each case the validation verdict
   with the default ``ingest.max_resource_amplification`` (64), the amplification (resource +
   scope bytes repeated over the rows, per request byte), and — in a fresh child process each —
   the resident memory the C flatten of that one request adds (resident set with the block alive,
   or the peak, minus before),
   per byte of the request. The issue's case (2,000 spans, a 1 MB resource attribute: 5.3 GiB)
   is refused at validation now, before anything is built; with 1 MiB the attribute itself is
   over ``ingest.max_attribute_bytes`` and its spans are rejected.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otel_ai.errors import DecodeError  # noqa: E402
from otel_ai.model import Payload  # noqa: E402
from otel_ai.native import _native  # noqa: E402
from otel_ai.otlp.limits import Limits  # noqa: E402
from otel_ai.otlp.validate import validate  # noqa: E402
from otel_ai.storage.decoders import native as decode_native  # noqa: E402
from otel_ai.testing.otlp_cases import many_attributes_request as _request  # noqa: E402
from otel_ai.testing.otlp_cases import now_ns, traces_pb  # noqa: E402

MIB = 1024 * 1024


def _best(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def attributes() -> None:
    print("attributes on one span          validate (C check)   flatten (C, Native block)")
    for n in (10_000, 100_000, 200_000):
        for label, keys in (
            ("distinct", [f"key.{i}" for i in range(n)]),
            ("1k keys", [f"key.{i % 1000}" for i in range(n)]),
        ):
            body = _request(keys)
            check = _best(lambda body=body: _native.check_traces(body))
            flat = _best(
                lambda body=body: decode_native.traces_block([Payload("traces", "protobuf", "http", body, 1)])
            )
            print(
                f"  {n:>7,} {label:<9} {len(body) / MIB:6.1f} MiB   {check * 1000:8.1f} ms        {flat * 1000:8.1f} ms"
            )


_CHILD = """
import resource, sys, json
sys.path.insert(0, sys.argv[1])
from otel_ai.model import Payload
from otel_ai.storage.decoders import native as decode_native
from otel_ai.testing.otlp_cases import now_ns, traces_pb
r, n = int(sys.argv[2]), int(sys.argv[3])
body = traces_pb(b"\\x01" * 16, [now_ns()] * n, resource_attr="r" * r)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
before, peak0 = rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
block, rows = decode_native.traces_block([Payload("traces", "protobuf", "http", body, n)])
added = max(rss() - before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak0)
print(json.dumps({"body": len(body), "block": len(block), "rss_added": added}))
"""


def memory() -> None:
    print()
    print(
        "resource bytes x spans          request   verdict (default limits)        amplif.  block/req  RSS added/req"
    )
    cases = [
        (300, 512),
        (3_000, 512),
        (300, 50_000),
        (3_000, 50_000),
        (10_000, 1_000),
        (64 * 1024, 200),
        (1_000_000, 2_000),
        (MIB, 2_000),
    ]
    limits = Limits()
    for r, n in cases:
        body = traces_pb(b"\x01" * 16, [now_ns()] * n, resource_attr="r" * r)
        t0 = time.perf_counter()
        try:
            p = validate("traces", "protobuf", "http", body, limits)
            verdict = f"200, {p.items} kept" + (f", {p.rejected} rejected" if p.rejected else "")
        except DecodeError as exc:
            verdict = f"400 {exc.reason}"
        took = (time.perf_counter() - t0) * 1000
        amplification = (r + 40) * n / len(body)
        if verdict.startswith("200") and not p.rejected:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(ROOT), str(r), str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            fig = json.loads(out.stdout)
            block = f"{fig['block'] / fig['body']:7.1f}x"
            rss = f"{fig['rss_added'] / fig['body']:7.1f}x"
        else:
            block = rss = "      -"
        print(
            f"  {r:>9,} B x {n:>5,} spans   {len(body) / MIB:6.2f} MiB  {verdict:<22} {took:6.1f} ms "
            f"{amplification:7.1f}x  {block}  {rss}"
        )
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def json_validation() -> None:
    """OTLP/JSON is parsed exactly before the ack: C for traces, protobuf's json_format otherwise."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from otel_ai.testing.otlp_payloads import trace_request
    from otel_ai.testing.otlp_samples import to_json

    now = now_ns()
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "svc"
    sl = rl.scope_logs.add()
    for i in range(512):
        r = sl.log_records.add(time_unix_nano=now, observed_time_unix_nano=now, severity_number=9)
        r.body.string_value = f"user {i} logged in"
        for k in range(6):
            r.attributes.add(key=f"attr.{k}").value.string_value = f"value-{k}-{i}"
    logs = to_json(req)  # hex ids, as the spec writes them
    traces = to_json(trace_request(512)[0])
    print()
    print("OTLP/JSON validation (512 items per request)")
    for label, signal, body in (
        ("traces (C transcoder)", "traces", traces),
        ("logs (json_format)", "logs", logs),
    ):
        took = _best(lambda signal=signal, body=body: validate(signal, "json", "http", body))
        print(
            f"  {label:<24} {len(body) / 1024:7.0f} KiB  {took * 1000:7.1f} ms  {took / 512 * 1e6:7.1f} us/item"
        )


if __name__ == "__main__":
    attributes()
    memory()
    json_validation()
