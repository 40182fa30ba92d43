"""Bad input on every path gets the right status and a message that says what is wrong.

The daemon must stay up and what it stored before must stay intact (checked at the end).
Error bodies are ``google.rpc.Status`` in the request's encoding (OTLP spec §Failures).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_ai.testing.daemons import InProcessDaemon, daemon_config
from otel_ai.testing.otlp_payloads import json_span, json_trace, trace_request

MAX_BODY = 2 * 1024 * 1024
PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def daemon(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    extra = {"ingest.max_body_bytes": MAX_BODY, "pipeline.batch_timeout_ms": 10}
    cfg, ep = daemon_config(chdb_path, tmp=tmp_path_factory.mktemp("malformed"), extra=extra)
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def seeded(daemon: InProcessDaemon) -> str:
    """A trace stored before any bad input arrives."""
    req, tid = trace_request(4, service="seed")
    r = httpx.post(daemon.ep.http_url + "/v1/traces", content=req.SerializeToString(), headers=PB)
    assert r.status_code == 200
    return tid


def _status(r: httpx.Response) -> tuple[int, str]:
    if r.headers["content-type"].startswith("application/json"):
        doc = r.json()
        return int(doc["code"]), str(doc["message"])
    st = status_pb2.Status.FromString(r.content)
    return st.code, st.message


_VALID_PB = trace_request(3)[0].SerializeToString()

HTTP_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("garbage-protobuf", {"content": b"\xff\xfe\x00garbage\x07", "headers": PB}, 400, "invalid protobuf"),
    (
        "truncated-protobuf",
        {"content": _VALID_PB[: len(_VALID_PB) // 2], "headers": PB},
        400,
        "invalid protobuf",
    ),
    ("malformed-json", {"content": b'{"resourceSpans": [', "headers": JS}, 400, "JSON"),
    (
        "wrong-shape-json",
        {"content": b'{"resourceSpans": {"scopeSpans": 5}}', "headers": JS},
        400,
        "resourceSpans",
    ),
    ("json-array-top", {"content": b"[1, 2]", "headers": JS}, 400, ""),
    (
        "bad-gzip",
        {"content": b"\x1f\x8bthis is not gzip", "headers": {**PB, "content-encoding": "gzip"}},
        400,
        "invalid gzip body",
    ),
    (
        "truncated-gzip",
        {"content": gzip.compress(_VALID_PB)[:-12], "headers": {**PB, "content-encoding": "gzip"}},
        400,
        "truncated",
    ),
    (
        "gzip-bomb",
        {"content": gzip.compress(b"\0" * (64 * MAX_BODY)), "headers": {**PB, "content-encoding": "gzip"}},
        413,
        "max_body_bytes",
    ),
    (
        "deflate-bomb",
        {"content": zlib.compress(b"\0" * (64 * MAX_BODY)), "headers": {**JS, "content-encoding": "deflate"}},
        413,
        "max_body_bytes",
    ),
    ("oversize-body", {"content": b"\0" * (MAX_BODY + 1), "headers": PB}, 413, "max_body_bytes"),
    (
        "wrong-content-type",
        {"content": _VALID_PB, "headers": {"content-type": "text/plain"}},
        415,
        "application/x-protobuf or application/json",
    ),
    ("no-content-type", {"content": _VALID_PB, "headers": {}}, 415, "unsupported content type"),
    (
        "unsupported-encoding",
        {"content": _VALID_PB, "headers": {**PB, "content-encoding": "br"}},
        415,
        "unsupported content encoding 'br'",
    ),
]


@pytest.mark.parametrize(("name", "kw", "status", "message"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_http_bad_input(
    daemon: InProcessDaemon, seeded: str, name: str, kw: dict[str, Any], status: int, message: str
) -> None:
    r = httpx.post(daemon.ep.http_url + "/v1/traces", timeout=30, **kw)
    assert r.status_code == status, r.content[:300]
    want_ct = (
        "application/json"
        if kw["headers"].get("content-type") == "application/json"
        else "application/x-protobuf"
    )
    assert r.headers["content-type"] == want_ct
    code, msg = _status(r)
    assert code in (3, 8) and message in msg and msg
    assert "retry-after" not in r.headers  # none of these is retryable


def test_wrong_method_is_405_with_allow(daemon: InProcessDaemon) -> None:
    for method in ("GET", "PUT", "DELETE"):
        r = httpx.request(method, daemon.ep.http_url + "/v1/logs")
        assert (r.status_code, r.headers["allow"]) == (405, "POST")
        assert "method " + method in _status(r)[1]


@pytest.mark.parametrize("path", ["/", "/v1/trace", "/v1/traces/x", "/v2/traces", "/api/v1/status"])
def test_unknown_path_is_404(daemon: InProcessDaemon, path: str) -> None:
    r = httpx.post(daemon.ep.http_url + path, content=_VALID_PB, headers=PB)
    assert r.status_code == 404 and "/v1/traces" in _status(r)[1]


def test_json_bad_hex_id_is_rejected_per_span_as_partial_success(daemon: InProcessDaemon) -> None:
    good_tid = "5b8efff798038103d269b633813fc60c"
    body = json_trace(
        [
            json_span(good_tid, "eee19b7ec3c1b174", "good"),
            json_span("zz" * 16, "eee19b7ec3c1b175", "bad-hex"),
            json_span(good_tid[:30], "eee19b7ec3c1b176", "short"),
        ]
    )
    r = httpx.post(daemon.ep.http_url + "/v1/traces", content=body, headers=JS)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] in ("2", 2) and "traceId" in partial["errorMessage"]
    daemon.wait_inserted()  # the default ack point is the write-ahead log, before the insert
    spans = daemon.get(f"/api/v1/traces/{good_tid}").json()["spans"]
    assert [s["name"] for s in spans] == ["good"]


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"", PB, b""),  # empty request → success, partial_success unset (spec)
        (b"{}", JS, b"{}"),
        (b'{"resourceSpans": []}', {"content-type": "application/json; charset=utf-8"}, b"{}"),
        (zlib.compress(_VALID_PB), {**PB, "content-encoding": "deflate"}, b""),
        (zlib.compress(_VALID_PB)[2:-4], {**PB, "content-encoding": "deflate"}, b""),  # raw deflate
        (
            gzip.compress(_VALID_PB) + gzip.compress(b""),
            {**PB, "content-encoding": "gzip"},
            b"",
        ),  # two members
    ],
    ids=["empty-protobuf", "empty-json", "json-charset", "deflate-zlib", "deflate-raw", "gzip-multimember"],
)
def test_accepted_variants(
    daemon: InProcessDaemon, body: bytes, headers: dict[str, str], expected: bytes
) -> None:
    r = httpx.post(daemon.ep.http_url + "/v1/traces", content=body, headers=headers)
    assert (r.status_code, r.content) == (200, expected)
    assert r.headers["content-type"] == headers["content-type"].split(";")[0]
    if expected == b"":
        assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")


def _grpc_call(
    daemon: InProcessDaemon,
    body: bytes,
    method: str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    compression: Any = None,
) -> Any:
    with grpc.insecure_channel(
        daemon.ep.grpc, options=[("grpc.max_send_message_length", 64 * MAX_BODY)]
    ) as ch:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        return call(body, timeout=30, compression=compression)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"\xff\xfe\x00garbage\x07", grpc.StatusCode.INVALID_ARGUMENT, "invalid protobuf"),
        (_VALID_PB[:-7], grpc.StatusCode.INVALID_ARGUMENT, "invalid protobuf"),
        (b"\0" * (MAX_BODY + 10), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    ],
    ids=["garbage", "truncated", "oversize"],
)
def test_grpc_bad_input(
    daemon: InProcessDaemon, seeded: str, body: bytes, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _grpc_call(daemon, body)
    assert info.value.code() == code
    assert message in info.value.details()


def test_grpc_gzip_bomb_is_cut_at_the_limit(daemon: InProcessDaemon) -> None:
    # A few KB on the wire, 32 MiB once inflated: grpc enforces the limit on the inflated size.
    with pytest.raises(grpc.RpcError) as info:
        _grpc_call(daemon, b"\0" * (16 * MAX_BODY), compression=grpc.Compression.Gzip)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_grpc_unknown_method_is_unimplemented(daemon: InProcessDaemon) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _grpc_call(daemon, _VALID_PB, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_daemon_survives_and_earlier_data_is_intact(daemon: InProcessDaemon, seeded: str) -> None:
    # Runs last in this module (pytest keeps file order): everything above has been thrown at it.
    assert daemon.get("/healthz").status_code == 200
    assert daemon.get("/readyz").status_code == 200
    daemon.wait_inserted()
    spans = daemon.get(f"/api/v1/traces/{seeded}").json()["spans"]
    assert len(spans) == 4 and {s["service_name"] for s in spans} == {"seed"}
    counters = daemon.get("/api/v1/status").json()["receivers"]["counters"]["traces"]["http"]
    assert (
        counters["protobuf"]["outcomes"]["invalid"] >= 3
        and counters["protobuf"]["outcomes"]["too_large"] >= 2
    )
    req, tid = trace_request(2)
    assert _grpc_call(daemon, req.SerializeToString()) == b""
    daemon.wait_inserted()
    assert len(daemon.get(f"/api/v1/traces/{tid}").json()["spans"]) == 2
    json.dumps(counters)  # status stays serialisable
