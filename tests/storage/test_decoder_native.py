"""The native (C) trace decoder: the same rows as the python decoder, byte for byte, on every shape.

Each case inserts the same payloads twice into the real embedded ClickHouse — once as the C
code's Native block, once through the python decoder (upb + pdata ``AsString``, the reference) —
and compares every column of every row.
"""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otel_ai.errors import DecodeError
from otel_ai.model import Payload
from otel_ai.otlp.validate import validate
from otel_ai.storage import Storage
from otel_ai.storage.decoders import native as decode_native
from otel_ai.storage.decoders.python import write_python
from otel_ai.storage.decoders.values import go_float
from otel_ai.storage.schema import TRACE_COLUMNS
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing import otlp_samples as s
from otel_ai.testing.stores import storage_at


def test_built() -> None:
    """`pip install` compiles otel_ai/native/_native.c; CI machines have a C compiler."""
    assert decode_native.available(), "otel_ai.native._native was not built"


# -- helpers ----------------------------------------------------------------------------------------


def _payload(
    req: ExportTraceServiceRequest | bytes, transport: str = "http", encoding: str = "protobuf"
) -> Payload:
    if isinstance(req, bytes):
        body = req
    else:
        body = req.SerializeToString() if encoding == "protobuf" else s.to_json(req)
    return Payload("traces", encoding, transport, body, 1)  # type: ignore[arg-type]


def _rows(storage: Storage) -> list[tuple[Any, ...]]:
    cols = ", ".join(f"`{c}`" for c in TRACE_COLUMNS if c != "Timestamp")
    return storage.query(
        f"SELECT toUnixTimestamp64Nano(Timestamp), {cols} FROM {{db:Identifier}}.otel_traces "
        "ORDER BY TraceId, SpanId, SpanName, Duration",
        {"db": storage.database},
    )


def _same_rows(storage: Storage, payloads: list[Payload]) -> list[tuple[Any, ...]]:
    """Insert natively into ``storage`` and via python into a twin database; return the rows."""
    twin = storage_at(storage.dsn, storage.database + "_py")
    twin.start()
    try:
        _block, rows = decode_native.traces_block(payloads)
        decoder = decode_native.NativeDecoder(storage, _no_fallback)
        decoder.write(payloads)  # the daemon's path: the block written to a file, FROM INFILE
        assert decoder.fallbacks == 0
        write_python(twin, payloads)
        native, reference = _rows(storage), _rows(twin)
        assert reference and rows >= len(reference)  # (rows past the TTL are not kept)
        assert native == reference
        return native
    finally:
        twin.command(f"DROP DATABASE IF EXISTS `{twin.database}`")


def _no_fallback(payloads: Any) -> None:
    raise AssertionError("the native decoder handed the batch over")


def test_the_file_and_the_bytes_hold_the_same_block(tmp_path: Any) -> None:
    payloads = [_payload(s.traces_request()), _payload(s.traces_request(), encoding="json")]
    block, rows = decode_native.traces_block(payloads)
    with open(tmp_path / "b.native", "wb") as fh:
        assert decode_native.traces_file(payloads, fh) == rows == 4
    assert (tmp_path / "b.native").read_bytes() == block


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# -- the equivalence cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_fidelity_sample_every_value_type(storage: Storage, encoding: str) -> None:
    rows = _same_rows(storage, [_payload(s.traces_request(), encoding=encoding)])
    root = next(r for r in rows if r[2] == s.ROOT_ID.hex())
    assert dict(root[11]) == s.ATTRS_STORED  # arrays and kvlists included, as Go marshals them
    assert dict(root[8]) == s.RESOURCE_STORED


def test_many_resources_scopes_events_links_and_tags(storage: Storage) -> None:
    reqs = []
    for i in range(3):
        req = s.traces_request()
        for ss in req.resource_spans[0].scope_spans:
            for span in ss.spans:
                span.trace_id = bytes([i + 1]) * 16
        extra = req.resource_spans.add()
        s.add_attrs(extra.resource.attributes, {"service.name": f"svc-{i}", "k8s.pod.uid": b"\x01\x02"})
        sc = extra.scope_spans.add()
        bare = sc.spans.add(trace_id=bytes([i + 9]) * 16, span_id=b"\x07" * 8, name="bare")
        bare.start_time_unix_nano = s.NOW  # everything else unset
        reqs.append(req)
    payloads = [_payload(reqs[0], "grpc"), _payload(reqs[1], "http"), _payload(reqs[2], "grpc")]
    rows = _same_rows(storage, payloads)
    assert {r[-1] for r in rows} == {"grpc", "http"}
    assert any(r[7] == "svc-1" for r in rows)


def test_protobuf_merge_semantics_and_field_order(storage: Storage) -> None:
    """Fields in any order, repeated singular messages merged, duplicate keys, unknown fields."""
    span = s.traces_request().resource_spans[0].scope_spans[0].spans[0]
    span.ClearField("attributes")
    s.add_attrs(span.attributes, {"dup": "first", "other": 1, "dup.": 2})
    s.add_attrs(span.attributes, {"dup": "second"})  # last wins, first position kept
    span_bytes = span.SerializeToString()
    # status sent twice: message from the first, code from the second (merge)
    span_bytes += _field(15, bytes([0x18, 0x01]))  # a second Status carrying only code = Ok
    span_bytes += _field(999, b"unknown field")  # skipped
    span_bytes += bytes([0x30]) + _varint((1 << 64) - 1)  # kind -1 (sign-extended) → Unspecified
    scope = s.traces_request().resource_spans[0].scope_spans[0].scope.SerializeToString()
    # spans before their scope, scope spans before their resource, resource sent in two halves
    scope_spans = _field(2, span_bytes) + _field(1, scope) + _field(3, b"https://schema/scope")
    half = len(s.traces_request().resource_spans[0].resource.attributes) // 2
    res = s.traces_request().resource_spans[0].resource
    first = ExportTraceServiceRequest().resource_spans.add().resource
    second = ExportTraceServiceRequest().resource_spans.add().resource
    first.attributes.extend(res.attributes[:half])
    second.attributes.extend(res.attributes[half:])
    resource_spans = (
        _field(2, scope_spans) + _field(1, first.SerializeToString()) + _field(3, b"https://schema/res")
    ) + _field(1, second.SerializeToString())
    body = _field(1, resource_spans)
    rows = _same_rows(storage, [_payload(body)])
    assert rows[0][6] == "Unspecified"
    assert dict(rows[0][11])["dup"] == "second"
    assert list(dict(rows[0][11])) == ["dup", "other", "dup."]


def _random_value(rnd: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "bytes", "none"] + (["list", "dict"] if depth < 3 else [])
    kind = rnd.choice(kinds)
    if kind == "str":
        return "".join(rnd.choice(["a", "é", "<", "&", '"', "\\", "\n", "\x01", "\u2028", "€", "/", "𝄞"])
                       for _ in range(rnd.randint(0, 6)))  # fmt: skip
    if kind == "int":
        return rnd.choice([0, -1, 2**63 - 1, -(2**63), rnd.randint(-(10**12), 10**12)])
    if kind == "float":
        bits = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        return rnd.choice([bits, rnd.uniform(-1e6, 1e6), 1e21, 1e-7, 0.1, -0.0, float("inf"), float("nan")])
    if kind == "bool":
        return rnd.random() < 0.5
    if kind == "bytes":
        return rnd.randbytes(rnd.randint(0, 5))
    if kind == "list":
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    if kind == "dict":
        return {rnd.choice(["a", "b", "é", "Z", "", "a.b"]): _random_value(rnd, depth + 1) for _ in range(3)}
    return None


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_random_requests(storage: Storage, encoding: str) -> None:
    rnd = random.Random(20261129)
    payloads = []
    for _ in range(12):
        req = ExportTraceServiceRequest()
        for _ in range(rnd.randint(1, 3)):
            rs = req.resource_spans.add()
            s.add_attrs(
                rs.resource.attributes, {"service.name": rnd.choice(["a", "b", 7]), "r": _random_value(rnd)}
            )
            for _ in range(rnd.randint(1, 2)):
                ss = rs.scope_spans.add()
                ss.scope.name = rnd.choice(["", "lib"])
                s.add_attrs(ss.scope.attributes, {"x": _random_value(rnd)})
                for k in range(rnd.randint(1, 5)):
                    sp = ss.spans.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), name=f"op{k}")
                    sp.parent_span_id = rnd.choice([b"", rnd.randbytes(8)])
                    sp.kind = rnd.randint(0, 7)  # type: ignore[assignment]
                    sp.start_time_unix_nano = s.NOW + rnd.randint(-(10**12), 10**12)
                    sp.end_time_unix_nano = rnd.choice([0, sp.start_time_unix_nano + rnd.randint(0, 10**9)])
                    sp.flags = rnd.getrandbits(32)
                    sp.status.code = rnd.randint(0, 4)  # type: ignore[assignment]
                    s.add_attrs(
                        sp.attributes, {f"k{j}": _random_value(rnd) for j in range(rnd.randint(0, 8))}
                    )
                    for _ in range(rnd.randint(0, 2)):
                        ev = sp.events.add(time_unix_nano=rnd.choice([0, 2**63 - 1, s.NOW]), name="e")
                        s.add_attrs(ev.attributes, {"v": _random_value(rnd)})
                    for _ in range(rnd.randint(0, 2)):
                        ln = sp.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8))
                        s.add_attrs(ln.attributes, {"v": _random_value(rnd)})
        payloads.append(_payload(req, rnd.choice(["grpc", "http"]), encoding))
    _same_rows(storage, payloads)


def test_json_leniency_matches_the_python_decoder(storage: Storage) -> None:
    """What the OTLP/JSON spec and json_format allow: number/string int64, enum names, nulls..."""
    req = s.traces_request()
    bodies = [
        s.to_json(req, int64_as_numbers=True, enum_names=True),
        s.to_json(req).replace(s.TRACE_ID.hex().encode(), s.TRACE_ID.hex().upper().encode()),
    ]
    tid, sid = "ab" * 16, "cd" * 8
    bodies.append(
        (
            '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"j\\u00e9"}},'
            '{"key":"nullv","value":null},{"key":"n","value":{"intValue":-9223372036854775808}}]},'
            '"future":{"deep":[1,{"x":null}]},"scopeSpans":[{"scope":null,"spans":[{"traceId":"' + tid + '",'
            '"spanId":"'
            + sid
            + '","parentSpanId":"","name":"a\\/b \\ud834\\udd1e","kind":"SPAN_KIND_CLIENT",'
            '"startTimeUnixNano":"' + str(s.NOW) + '","endTimeUnixNano":' + str(s.NOW + 5) + ","
            '"status":{"code":2,"message":null},"attributes":[{"key":"d","value":{"doubleValue":"-Infinity"}},'
            '{"key":"e","value":{"doubleValue":1e-7}},{"key":"b","value":{"bytesValue":"AAH+/w=="}},'
            '{"key":"k","value":{"kvlistValue":{"values":[{"key":"z","value":{"boolValue":false}},'
            '{"key":"a","value":{"arrayValue":{"values":[{},{"doubleValue":"NaN"}]}}}]}}},'
            '{"key":"empty","value":{}},{"key":"ea","value":{"arrayValue":{}}}],'
            '"events":[{"timeUnixNano":"1","name":"x","attributes":null}],"links":[],"flags":257}]}]}]}'
        ).encode()
    )
    _same_rows(storage, [_payload(b, encoding="json") for b in bodies])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"resource_spans":[]}', id="snake-case-key"),
        pytest.param(b'{"resourceSpans":[{"schemaUrl":"a","schemaUrl":"b"}]}', id="duplicate-key"),
        pytest.param(
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"2"}]}]}]}', id="enum-as-numeric-string"
        ),
        pytest.param(
            b'{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"intValue":1.5}}]}}]}',
            id="fraction-in-int",
        ),
        pytest.param(
            b'{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"stringValue":"\\ud834"}}]}}]}',
            id="lone-surrogate",
        ),
        pytest.param(
            b'{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"stringValue":"x","intValue":1}}]}}]}',
            id="two-anyvalue-members",
        ),
        pytest.param(b'{"resourceSpans":[null]}', id="null-element"),
        pytest.param(
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]}', id="short-hex-id"
        ),
    ],
)
def test_json_outside_the_common_ground_is_unsupported(body: bytes) -> None:
    with pytest.raises(decode_native.UNSUPPORTED):
        decode_native.traces_block([_payload(body, encoding="json")])


@pytest.mark.parametrize(
    "body",
    [b'{"resourceSpans":[', b'{"resourceSpans":[]} x', b'{"resourceSpans":[{"schemaUrl":"a\\q"}]}'],
    ids=["truncated", "trailing-garbage", "bad-escape"],
)
def test_malformed_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError, match=r"OTLP/JSON"):
        decode_native.traces_block([_payload(body, encoding="json")])


# -- what goes elsewhere, and bad input ---------------------------------------------------------------


def test_go_float_matches_the_python_rendering() -> None:
    rnd = random.Random(7)
    values = [0.25, 2.0, 1e21, 1e-7, 1e-6, 1.5e-5, 1e16, 5e-324, 1.7976931348623157e308, -0.0, math.pi]
    values += [struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(20000)]
    values += [
        round(rnd.uniform(0, 1000), rnd.randint(0, 6)) * 10.0 ** rnd.randint(-25, 25) for _ in range(20000)
    ]
    from otel_ai.native import _native

    assert [_native.go_float(v) for v in values] == [go_float(v) for v in values]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda sp: setattr(sp, "start_time_unix_nano", 2**63), id="time-past-2^63"),
        pytest.param(lambda sp: sp.events.add(time_unix_nano=2**64 - 1), id="event-time-past-2^63"),
    ],
)
def test_unsupported_values_go_to_the_fallback(storage: Storage, mutate: Any) -> None:
    req = s.traces_request()
    mutate(req.resource_spans[0].scope_spans[0].spans[0])
    with pytest.raises(decode_native.UNSUPPORTED):
        decode_native.traces_block([_payload(req)])


def test_wrong_wire_type_for_a_known_field_is_unsupported_not_wrong() -> None:
    body = _field(1, _field(2, _field(2, bytes([0x08, 0x01]))))  # span.trace_id sent as a varint
    with pytest.raises(decode_native.UNSUPPORTED):
        decode_native.traces_block([_payload(body)])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x0a\xff\xff", id="length-past-end"),
        pytest.param(b"\x0a\x05\x12\x03\x12\x01", id="truncated-nested"),
        pytest.param(b"\x0b\x00", id="group-wire-type"),
        pytest.param(b"\x0a", id="missing-length"),
        pytest.param(bytes([0x0A, 0x0B]) + b"\x80" * 11, id="varint-too-long"),
    ],
)
def test_malformed_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError, match="not a valid ExportTraceServiceRequest"):
        decode_native.traces_block([_payload(s.traces_request()), _payload(body)])


def test_writer_routes_json_logs_and_unsupported_batches_and_counts_them(storage: Storage) -> None:
    registry = CollectorRegistry()
    writer = TelemetryWriter(storage, decoder="native", registry=registry)
    assert writer.decoder == "native"
    pb = validate("traces", "protobuf", "grpc", s.traces_request().SerializeToString())
    js = validate("traces", "json", "http", s.to_json(s.traces_request()))
    odd = s.traces_request()
    odd.resource_spans[0].scope_spans[0].spans[1].start_time_unix_nano = 2**63 + 5
    writer.write([pb, js])  # both natively (JSON transcoded in C)
    # (validate refuses such a span before the ack; the writer still hands it over whole)
    writer.write([Payload("traces", "protobuf", "http", odd.SerializeToString(), 2)])  # batch to engine
    writer.write([validate("logs", "protobuf", "http", s.logs_request().SerializeToString())])
    got = storage.query(
        "SELECT IngestEncoding, IngestTransport, count() FROM {db:Identifier}.otel_traces GROUP BY 1, 2 ORDER BY 1, 2",
        {"db": storage.database},
    )
    assert got == [("json", "http", 2), ("protobuf", "grpc", 2), ("protobuf", "http", 2)]
    assert storage.query("SELECT count() FROM {db:Identifier}.otel_logs", {"db": storage.database})[0][0] > 0
    assert registry.get_sample_value("otel_ai_writer_native_fallbacks_total", {"signal": "traces"}) == 1.0


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_mutated_bodies_never_crash(encoding: str) -> None:
    """Random byte flips, cuts and splices of a valid body: a block, Unsupported or DecodeError."""
    rnd = random.Random(99)
    good = s.traces_request().SerializeToString() if encoding == "protobuf" else s.to_json(s.traces_request())
    outcomes = {"ok": 0, "unsupported": 0, "decode": 0}
    for _ in range(3000):
        body = s.mutate(rnd, good, 4, 8)
        try:
            decode_native.traces_block([_payload(body, encoding=encoding)])
            outcomes["ok"] += 1
        except decode_native.UNSUPPORTED:
            outcomes["unsupported"] += 1
        except DecodeError:
            outcomes["decode"] += 1
    assert all(outcomes.values()), outcomes
