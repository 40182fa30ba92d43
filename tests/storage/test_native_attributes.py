"""The C decoder's attribute maps: linear time at 100k attributes, the python decoder's semantics.

A repeated key keeps its first position and takes its last value (pdata's ``Map``, and a Python
dict), whether the map is small (scanned) or big (the key index from 16 entries on).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from otel_ai.model import Payload
from otel_ai.storage import Storage
from otel_ai.storage.decoders import native as decode_native
from otel_ai.storage.decoders.python import write_python
from otel_ai.testing.otlp_cases import many_attributes_request


def _flatten_seconds(body: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        _block, rows = decode_native.traces_block([Payload("traces", "protobuf", "http", body, 1)])
        best = min(best, time.perf_counter() - t0)
        assert rows == 1
    return best


def test_attribute_handling_is_linear_up_to_100k() -> None:
    """100k distinct keys (and 100k repeats of 1k keys) in one span flatten in well under a second.

    The quadratic scan took 0.20 s at 10k and 0.74 s at 20k attributes, so ~20 s at 100k; the
    key index takes ~15-40 ms here (bench/hardening.py prints the figures).
    """
    distinct = many_attributes_request([f"key.{i}" for i in range(100_000)])
    repeated = many_attributes_request([f"key.{i % 1000}" for i in range(100_000)])
    assert _flatten_seconds(distinct) < 1.0
    assert _flatten_seconds(repeated) < 1.0


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(["a", "b", "a", "c", "b"], id="small-map-scanned"),
        pytest.param([f"k{i % 23}" for i in range(200)], id="big-map-indexed"),
        pytest.param(
            [f"k{i}" for i in range(30)] + ["k3", "k29", "k0", ""] * 3, id="repeats-after-the-index"
        ),
        pytest.param([f"x{i}" for i in range(5000)] + [f"x{i}" for i in range(0, 5000, 7)], id="index-grows"),
    ],
)
def test_repeated_keys_first_position_last_value_like_python(storage: Storage, keys: list[str]) -> None:
    native_tid, py_tid = b"\x0a" * 16, b"\x0b" * 16
    rkeys = [f"r{i % 19}" for i in range(60)]
    native = Payload(
        "traces", "protobuf", "http", many_attributes_request(keys, resource_keys=rkeys, tid=native_tid), 1
    )
    python = Payload(
        "traces", "protobuf", "http", many_attributes_request(keys, resource_keys=rkeys, tid=py_tid), 1
    )

    def fail(_: Any) -> None:
        raise AssertionError("the native decoder handed the batch over")

    decode_native.NativeDecoder(storage, fail).write([native])
    write_python(storage, [python])
    rows = storage.query(
        "SELECT TraceId, mapKeys(SpanAttributes), mapValues(SpanAttributes), mapKeys(ResourceAttributes), "
        "mapValues(ResourceAttributes), Events.Attributes FROM {db:Identifier}.otel_traces ORDER BY TraceId",
        {"db": storage.database},
    )
    assert [r[0] for r in rows] == [native_tid.hex(), py_tid.hex()]
    assert rows[0][1:] == rows[1][1:]
    expected: dict[str, str] = {}
    for i, k in enumerate(keys):
        expected[k] = f"v{i}"
    assert list(zip(rows[0][1], rows[0][2], strict=True)) == list(expected.items())
