"""validate(): item counts, partial rejection of bad ids, and precise DecodeError messages."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_ai.errors import DecodeError
from otel_ai.otlp.jsonfix import json_to_request
from otel_ai.otlp.validate import validate
from otel_ai.testing import otlp_samples as s
from otel_ai.testing.fuzzing import mutate as _fuzz_mutate

TID = "5b8efff798038103d269b633813fc60c"
SID = "eee19b7ec3c1b174"


def _json_traces(*spans: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{}, {"spans": list(spans)}]}]})


def _span(**kw: Any) -> dict[str, Any]:
    return {"traceId": TID, "spanId": SID, "name": "x", "kind": 2, "startTimeUnixNano": s.NOW, **kw}


@pytest.mark.parametrize(
    ("signal", "encoding", "body", "items"),
    [
        pytest.param("traces", "protobuf", s.traces_request().SerializeToString(), 2, id="traces-pb"),
        pytest.param("logs", "protobuf", s.logs_request().SerializeToString(), 2, id="logs-pb"),
        pytest.param("metrics", "protobuf", s.metrics_request().SerializeToString(), 5, id="metrics-pb"),
        pytest.param("traces", "json", s.to_json(s.traces_request()), 2, id="traces-json"),
        pytest.param("logs", "json", s.to_json(s.logs_request()), 2, id="logs-json"),
        pytest.param("metrics", "json", s.to_json(s.metrics_request()), 5, id="metrics-json"),
        pytest.param("traces", "protobuf", b"", 0, id="empty-pb"),
        pytest.param("traces", "json", b"{}", 0, id="empty-json"),
        pytest.param("traces", "json", _json_traces(_span(kind="SPAN_KIND_SERVER", startTimeUnixNano=5)), 1,
                     id="json-enum-name-int64-number"),
    ],
)  # fmt: skip
def test_good_payloads_are_counted(signal: str, encoding: str, body: bytes, items: int) -> None:
    p = validate(signal, encoding, "http", body)  # type: ignore[arg-type]
    assert (p.items, p.rejected, p.error_message) == (items, 0, "")
    assert (p.signal, p.encoding, p.transport) == (signal, encoding, "http")
    if encoding == "json":
        # handed on as the same request in protobuf: half the bytes, no second transcode at insert
        assert p.wire == p.body_encoding == "protobuf"
        assert type(want := json_to_request(signal, body)).FromString(p.body) == want
    else:
        assert p.body == body and p.wire is None


@pytest.mark.parametrize(
    ("signal", "encoding", "body", "message"),
    [
        pytest.param("traces", "protobuf", b"\xff\xff\xff\xff", "invalid protobuf ExportTraceServiceRequest",
                     id="garbage-pb"),
        pytest.param("traces", "protobuf", s.traces_request().SerializeToString()[:-7],
                     "invalid protobuf ExportTraceServiceRequest", id="truncated-pb"),
        pytest.param("traces", "json", b'{"resourceSpans": [', "invalid JSON", id="truncated-json"),
        pytest.param("traces", "json", b"[1, 2]", "expected an object at the top level, got a list", id="json-list"),
        pytest.param("traces", "json", b'{"resourceSpans": {}}', "resourceSpans: expected a list, got an object",
                     id="resource-spans-not-list"),
        pytest.param("traces", "json", b'{"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]}',
                     "resourceSpans[0].scopeSpans[0].spans: expected a list, got a string", id="spans-not-list"),
        pytest.param("traces", "json", b'{"resourceSpans": [{"scopeSpans": [7]}]}',
                     "resourceSpans[0].scopeSpans[0]: expected an object, got a number", id="scope-not-object"),
        pytest.param("metrics", "json",
                     b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": {}}}]}]}]}',
                     "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints: expected a list, got an object",
                     id="datapoints-not-list"),
        pytest.param("metrics", "json",
                     b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"sum": {"dataPoints": [{"exemplars": '
                     b'[{"traceId": "abc"}]}]}}]}]}]}',
                     "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0].traceId: "
                     "expected 32 hex characters, got 3", id="exemplar-bad-hex"),
    ],
)  # fmt: skip
def test_undecodable_payloads_raise_precise_errors(
    signal: str, encoding: str, body: bytes, message: str
) -> None:
    with pytest.raises(DecodeError) as info:
        validate(signal, encoding, "grpc", body)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        pytest.param({"traceId": TID[:30]}, "spans[1].traceId: expected 32 hex characters, got 30", id="short-trace"),
        pytest.param({"spanId": "zz" * 8}, "spans[1].spanId: not a hex string", id="non-hex-span"),
        pytest.param({"spanId": None}, "spans[1].spanId: expected 16 hex characters, got none", id="missing-span"),
        pytest.param({"parentSpanId": "abc"}, "spans[1].parentSpanId: expected 16 hex characters, got 3",
                     id="bad-parent"),
        pytest.param({"traceId": 123}, "spans[1].traceId: expected a hex string, got a number", id="numeric-id"),
        pytest.param({"links": [{"traceId": "00"}]}, "spans[1].links[0].traceId: expected 32 hex characters, got 2",
                     id="bad-link"),
    ],
)  # fmt: skip
def test_json_spans_with_bad_ids_are_rejected_not_the_request(bad: dict[str, Any], why: str) -> None:
    body = _json_traces(_span(), _span(**bad), _span(spanId="eee19b7ec3c1b175"))
    p = validate("traces", "json", "http", body)
    assert (p.items, p.rejected) == (2, 1)
    assert p.error_message == f"rejected 1 span with invalid ids; first: resourceSpans[0].scopeSpans[1].{why}"
    kept = ExportTraceServiceRequest.FromString(p.body).resource_spans[0].scope_spans[1].spans
    assert [sp.span_id.hex() for sp in kept] == [SID, "eee19b7ec3c1b175"]


def test_protobuf_spans_with_bad_ids_are_removed_and_reencoded() -> None:
    req = s.traces_request()
    spans = req.resource_spans[0].scope_spans[0].spans
    spans.add(trace_id=b"\x01" * 15, span_id=b"\x02" * 8, name="short trace id")
    spans.add(trace_id=b"\x01" * 16, span_id=bytes(8), name="zero span id")
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=b"\x03" * 4, name="bad parent")
    p = validate("traces", "protobuf", "grpc", req.SerializeToString())
    assert (p.items, p.rejected) == (2, 3)
    assert p.error_message == (
        "rejected 3 spans with invalid ids; first: "
        "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 16 non-zero bytes, got 15"
    )
    kept = ExportTraceServiceRequest.FromString(p.body).resource_spans[0].scope_spans[0].spans
    assert [sp.name for sp in kept] == ["GET /cart", "SELECT"]


def test_protobuf_log_records_with_bad_ids_are_rejected() -> None:
    req = s.logs_request()
    req.resource_logs[0].scope_logs[0].log_records.add(trace_id=b"\x01" * 3)
    p = validate("logs", "protobuf", "http", req.SerializeToString())
    assert (p.items, p.rejected) == (2, 1)
    assert "logRecords[2].traceId: expected 0 or 16 bytes, got 3" in p.error_message
    assert len(ExportLogsServiceRequest.FromString(p.body).resource_logs[0].scope_logs[0].log_records) == 2


def test_json_ids_are_read_as_hex_not_base64() -> None:
    """json_format alone would turn the 32 hex characters into 24 bytes (research §1.8)."""
    req = json_to_request("traces", s.to_json(s.traces_request()))
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id) == (s.TRACE_ID, s.ROOT_ID)
    assert span.links[0].trace_id == s.LINK_TRACE


def test_json_traces_take_the_compiled_path_and_agree_with_the_python_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otel_ai.otlp import validate as v

    good = s.to_json(s.traces_request())
    bad_id = s.traces_request()
    bad_id.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x00" * 8
    odd = good.replace(b'"resourceSpans"', b'"resource_spans"')  # snake_case: the transcoder declines
    bodies = [
        good,
        s.to_json(bad_id),
        odd,
        s.to_json(s.traces_request(), int64_as_numbers=True, enum_names=True),
    ]
    with_fast = [validate("traces", "json", "http", b) for b in bodies]
    monkeypatch.setattr(v, "_validate_json_fast", lambda body, limits: None)
    python_only = [validate("traces", "json", "http", b) for b in bodies]
    # The same counts and verdicts; the compiled path hands the same request on as protobuf.
    assert [(p.items, p.rejected, p.error_message) for p in with_fast] == [
        (p.items, p.rejected, p.error_message) for p in python_only
    ]
    # every path hands the request on as protobuf (the exact path after protobuf's JSON parser)
    assert [p.wire for p in with_fast] == ["protobuf"] * 4
    for fast, slow in zip(with_fast, python_only, strict=True):
        assert ExportTraceServiceRequest.FromString(fast.body) == ExportTraceServiceRequest.FromString(
            slow.body
        )
    assert with_fast[1].rejected == 1 and "all-zero" in with_fast[1].error_message
    monkeypatch.undo()
    monkeypatch.setattr(
        v, "parse_json_strict", lambda body: (_ for _ in ()).throw(AssertionError("python path"))
    )
    assert validate("traces", "json", "http", good).items == 2  # no Python dicts built


# -- the compiled check of protobuf trace requests (check_traces) vs upb ------------------------


def _upb(body: bytes) -> tuple[str, int]:
    """What upb alone makes of a trace body: ("ok", spans), ("reject", kept) or ("error", 0)."""
    try:
        req = ExportTraceServiceRequest.FromString(body)
    except Exception:
        return "error", 0
    spans = [sp for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]

    def ok(sp: Any) -> bool:
        return (
            len(sp.trace_id) == 16 and any(sp.trace_id) and len(sp.span_id) == 8 and any(sp.span_id)
            and len(sp.parent_span_id) in (0, 8)
            and all(len(ln.trace_id) in (0, 16) and len(ln.span_id) in (0, 8) for ln in sp.links)
        )  # fmt: skip

    kept = sum(map(ok, spans))
    return ("ok" if kept == len(spans) else "reject"), kept


def test_the_compiled_check_vouches_only_for_what_upb_accepts_whole() -> None:
    """Mutated bodies: whenever check_traces returns a count, upb parses the body, keeps every
    span and counts the same; and it vouches for most intact requests (else it is useless)."""
    import random

    from otel_ai.native import _native

    rnd = random.Random(7)
    good = s.traces_request().SerializeToString()
    assert _native.check_traces(good) == _upb(good)[1] == 2
    vouched = declined = 0
    for _ in range(4000):
        body = s.mutate(rnd, good, 3, 4)
        try:
            n = _native.check_traces(body)
        except _native.Unsupported:
            declined += 1
            continue
        vouched += 1
        assert _upb(body) == ("ok", n), body.hex()
    assert vouched > 100 and declined > 1000, (vouched, declined)


@pytest.mark.parametrize(
    "mutate, upb_says",
    [
        (lambda sp: setattr(sp, "name", "caf\u00e9"), "ok"),  # valid UTF-8 passes
        (lambda sp: setattr(sp, "trace_id", b"\x01" * 15), "reject"),
        (lambda sp: setattr(sp, "parent_span_id", b"\x01" * 3), "reject"),
        (lambda sp: sp.links.add(trace_id=b"\x01" * 16, span_id=b"\x01" * 7), "reject"),
    ],
)
def test_the_compiled_check_and_upb_agree_on_spans(mutate: Any, upb_says: str) -> None:
    from otel_ai.native import _native

    req = s.traces_request()
    mutate(req.resource_spans[0].scope_spans[0].spans[0])
    body = req.SerializeToString()
    assert _upb(body)[0] == upb_says
    if upb_says == "ok":
        assert _native.check_traces(body) == 2
    else:
        with pytest.raises(_native.Unsupported):
            _native.check_traces(body)
        assert validate("traces", "protobuf", "http", body).rejected == 1  # upb's path words it


def _two_passes(body: bytes, **limits: int) -> tuple[bytes, int] | None:
    from otel_ai.native import _native

    try:
        pb = _native.json_traces_to_protobuf(body)
        return pb, _native.check_traces(pb, **limits)
    except (ValueError, _native.Unsupported):
        return None


def _one_pass(body: bytes, **limits: int) -> tuple[bytes, int] | None:
    from otel_ai.native import _native

    try:
        out: tuple[bytes, int] = _native.json_traces_checked(body, **limits)
        return out
    except (ValueError, _native.Unsupported):
        return None


def _nested_json(kind: str, levels: int) -> bytes:
    """A trace request whose first span has one attribute nested ``levels`` arrays / kvlists deep
    (``-empty``: ending in an empty one, so the deepest message is the wrapper itself)."""
    req = s.traces_request()
    value = req.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="deep").value
    array = kind.startswith("array")
    for _ in range(levels):
        value = value.array_value.values.add() if array else value.kvlist_value.values.add(key="k").value
    if kind.endswith("-empty"):
        (value.array_value if array else value.kvlist_value).SetInParent()
    else:
        value.int_value = 1
    return s.to_json(req)


def test_the_one_pass_json_check_decides_as_transcoding_then_checking() -> None:
    """json_traces_checked (the receivers' path) against json_traces_to_protobuf + check_traces,
    on mutated bodies under random limits that straddle the sample's own figures: the same
    protobuf and count, or both decline. Each limit must decide some bodies either way."""
    import random

    rnd = random.Random(11)
    req = s.traces_request()
    starts = sorted(
        sp.start_time_unix_nano for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans
    )
    seeds = [s.to_json(req), s.to_json(req, int64_as_numbers=True, enum_names=True)]
    seeds += [_nested_json(kind, n) for kind in ("array", "kvlist") for n in (14, 15, 16, 29, 30, 31)]
    for field, value in [
        ("trace_id", b"\0" * 16),
        ("span_id", b"\0" * 8),
        ("span_id", b""),
        ("trace_id", b""),
    ]:
        bad = s.traces_request()
        setattr(bad.resource_spans[0].scope_spans[0].spans[1], field, value)
        seeds.append(s.to_json(bad))
    late_event = s.traces_request()
    late_event.resource_spans[0].scope_spans[0].spans[0].events[0].time_unix_nano = 2**63
    seeds.append(s.to_json(late_event))
    outcomes: dict[str, set[bool]] = {}
    for i in range(6000):
        body = rnd.choice(seeds)
        if i % 3:
            body = _fuzz_mutate(rnd, "json", body)
        which = rnd.choice(["none", "attrs", "attr_bytes", "expansion", "time"])
        limits = {
            "none": {},
            "attrs": {"max_attrs": rnd.randint(0, 16)},
            "attr_bytes": {"max_attr_bytes": rnd.randint(0, 120)},
            "expansion": {"max_expansion": rnd.randint(0, 1500)},
            "time": {
                "min_ns": starts[0] + rnd.choice([-1, 0, 1]),
                "max_ns": starts[-1] + rnd.choice([-1, 0, 1]),
            },
        }[which]
        one, two = _one_pass(body, **limits), _two_passes(body, **limits)
        assert one == two, (which, limits, body[:300])
        if two is not None or _two_passes(body) is not None:  # a body the limits decide on
            outcomes.setdefault(which, set()).add(two is not None)
    assert all(outcomes[w] == {True, False} for w in ("attrs", "attr_bytes", "expansion", "time")), outcomes
    assert outcomes["none"] == {True}


@pytest.mark.parametrize("kind", ["array", "kvlist", "array-empty", "kvlist-empty"])
def test_the_one_pass_json_check_draws_the_depth_line_where_check_traces_does(kind: str) -> None:
    verdicts = [(_one_pass(_nested_json(kind, n)), _two_passes(_nested_json(kind, n))) for n in range(8, 40)]
    assert all(one == two for one, two in verdicts)
    accepted = [two is not None for _, two in verdicts]
    assert accepted[0] and not accepted[-1]  # the line falls inside the range tried


def test_invalid_utf8_unknown_fields_and_deep_nesting_are_left_to_upb() -> None:
    from otel_ai.native import _native

    good = s.traces_request().SerializeToString()
    name = b"GET /cart"
    assert name in good
    bad_utf8 = good.replace(name, b"GET /c\xc3(rt")  # same length, invalid sequence
    with pytest.raises(_native.Unsupported):
        _native.check_traces(bad_utf8)
    # upb refuses proto3 strings that are not UTF-8
    with pytest.raises(DecodeError, match="invalid protobuf"):
        validate("traces", "protobuf", "http", bad_utf8)
    # overlong encodings (valid protobuf, unusual): a 3-byte tag, a 6-byte length
    for odd in (bytes([0x8A, 0x80, 0x00, 0x00]), bytes([0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])):
        with pytest.raises(_native.Unsupported):
            _native.check_traces(odd + good)
    unknown = good + bytes([0x98, 0x06, 0x01])  # field 99, varint: upb keeps it as an unknown field
    with pytest.raises(_native.Unsupported):
        _native.check_traces(unknown)
    assert validate("traces", "protobuf", "http", unknown).items == 2
    req = s.traces_request()
    value = req.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="deep").value
    for _ in range(40):
        value = value.array_value.values.add()
    value.int_value = 1
    deep = req.SerializeToString()
    with pytest.raises(_native.Unsupported):
        _native.check_traces(deep)
    assert validate("traces", "protobuf", "http", deep).items == 2
