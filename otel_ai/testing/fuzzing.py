"""A seeded mutator and the differential oracle of the C decoder against upb and the Python path.

The oracle: for one body, :func:`validate` with the compiled fast paths (``check_traces``, the
OTLP/JSON transcoder) and without them (upb, ``json`` + protobuf's ``json_format``) must give the
same verdict — refused, or accepted with the same items, rejections and the same protobuf request.
An accepted body must then flatten in both decoders (C: a block or ``Unsupported``, never a
``DecodeError``; Python: rows), since it was acknowledged. Used by the bounded run in
``tests/otlp/test_differential_fuzz.py`` and the long one in ``bench/fuzz.py`` (shared here, as
``bench/`` does not import ``tests/``).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_ai.errors import DecodeError
from otel_ai.otlp import validate as v
from otel_ai.otlp.limits import Limits
from otel_ai.storage.decoders import native as decode_native
from otel_ai.storage.decoders import python as decode_python
from otel_ai.testing import otlp_samples as s

# the regression corpus lives with the tests (a checkout, not an installed package)
CORPUS = Path(__file__).resolve().parents[2] / "tests" / "otlp" / "corpus"
LIMITS = Limits(max_attributes=64, max_attribute_bytes=2048)  # small, so the fuzz reaches them

JSON_SNIPPETS = [
    b"0123", b'"\xff"', b'"\xc3"', b',"name":"x"', b'"18446744073709551616"', b'"9223372036854775808"',
    b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\u0000", b"\\ud800", b"null", b"-0", b"1e999", b"1.5",
    b'"":1,', b'{"kvlistValue":{"values":[]}}', b'"stringValue":"a",', b"\x00", b"\x01", b" ", b"true",
    b'"startTimeUnixNano":"99999999999999999999",', b'"traceId":"00",', b'"attributes":[{"key":"k"}],',
]  # fmt: skip


def seeds() -> list[tuple[str, bytes]]:
    """Valid requests of every shape the samples have, in both encodings, and the corpus."""
    req = s.traces_request()
    out = [("protobuf", req.SerializeToString()), ("json", s.to_json(req)),
           ("json", s.to_json(req, int64_as_numbers=True, enum_names=True))]  # fmt: skip
    for path in sorted(CORPUS.iterdir()):
        out.append(("protobuf" if path.suffix == ".pb" else "json", path.read_bytes()))
    return out


def mutate(rnd: random.Random, encoding: str, body: bytes) -> bytes:
    """One to three random edits: a byte flip, a cut, a splice, a duplicated slice, a JSON token."""
    data = bytearray(body)
    for _ in range(rnd.randint(1, 3)):
        if not data:
            data = bytearray(b"{}")
        i = rnd.randrange(len(data))
        op = rnd.randrange(5 if encoding == "json" else 4)
        if op == 0:
            data[i] ^= 1 << rnd.randrange(8)
        elif op == 1:
            del data[i : i + rnd.randint(1, 16)]
        elif op == 2:
            j = rnd.randrange(len(data))
            data[i:i] = data[j : j + rnd.randint(1, 32)]
        elif op == 3:
            data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 4)))
        else:
            data[i:i] = rnd.choice(JSON_SNIPPETS)
    return bytes(data)


@contextlib.contextmanager
def exact_paths() -> Iterator[None]:
    """Validation without the compiled module (upb and the Python JSON path only)."""
    saved = v._native
    v._native = lambda: None  # type: ignore[assignment]
    try:
        yield
    finally:
        v._native = saved


@dataclass(frozen=True)
class Verdict:
    refused: bool
    items: int = 0
    rejected: int = 0
    reasons: tuple[tuple[str, int], ...] = ()
    request: Any = None


def verdict(encoding: str, body: bytes) -> Verdict:
    try:
        p = v.validate("traces", encoding, "http", body, LIMITS)  # type: ignore[arg-type]
    except DecodeError:
        return Verdict(True)
    req = ExportTraceServiceRequest.FromString(p.body)
    return Verdict(False, p.items, p.rejected, p.reasons, req)


def check(encoding: str, body: bytes) -> str | None:
    """None when the paths agree and an accepted body flattens; else what went wrong."""
    try:
        fast = verdict(encoding, body)
        with exact_paths():
            exact = verdict(encoding, body)
    except Exception as exc:  # validation must answer DecodeError or a payload, never crash (a 500)
        return f"validation raised {exc!r}"
    if fast != exact:
        return f"fast {fast!r:.300} != exact {exact!r:.300}"
    if fast.refused or not fast.items:
        return None
    p = v.validate("traces", encoding, "http", body, LIMITS)  # type: ignore[arg-type]
    try:
        decode_native.traces_block([p])
    except decode_native.UNSUPPORTED:
        pass  # handed to the next decoder: fine
    except DecodeError as exc:
        return f"accepted, but the C decoder refuses it: {exc}"
    try:
        rows = decode_python.flatten([p]).get("otel_traces", [])
    except DecodeError as exc:
        return f"accepted, but the python decoder refuses it: {exc}"
    if len(rows) != fast.items:
        return f"accepted {fast.items} spans, the python decoder made {len(rows)} rows"
    return None


def run(n: int, seed: int, *, stop_at: float | None = None) -> tuple[int, list[tuple[str, bytes, str]]]:
    """``n`` mutations (or until ``stop_at``, a ``time.monotonic()``): (bodies tried, findings)."""
    import time

    rnd = random.Random(seed)
    pool = seeds()
    findings: list[tuple[str, bytes, str]] = []
    tried = 0
    while tried < n and (stop_at is None or time.monotonic() < stop_at):
        encoding, base = rnd.choice(pool)
        body = mutate(rnd, encoding, base)
        tried += 1
        problem = check(encoding, body)
        if problem is not None:
            findings.append((encoding, body, problem))
    return tried, findings
