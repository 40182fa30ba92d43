"""Receiver counters name the encoding a request really had.

A request whose Content-Type is neither OTLP encoding is refused before its body is read. It is
counted under the encoding label ``unknown`` in ``/api/v1/status`` and ``/metrics``, never under
``protobuf`` (which would make a misconfigured client look like protobuf traffic), and still
answered with a protobuf ``google.rpc.Status``.
"""

from __future__ import annotations

from typing import Any

import httpx
from google.rpc import status_pb2

from otel_ai.testing.daemons import InProcessDaemon
from otel_ai.testing.otlp_payloads import trace_request

PB = {"content-type": "application/x-protobuf"}

# (method, path, headers, expected HTTP status); the body is always a valid protobuf request.
REQUESTS: list[tuple[str, str, dict[str, str], int]] = [
    ("POST", "/v1/traces", {"content-type": "text/plain"}, 415),
    ("POST", "/v1/traces", {"content-type": "application/grpc"}, 415),
    ("POST", "/v1/traces", {}, 415),
    ("GET", "/v1/traces", {}, 405),
    ("POST", "/v1/nope", {"content-type": "text/html"}, 404),
    ("POST", "/v1/traces", {"content-type": "application/json", "content-encoding": "br"}, 415),
    ("POST", "/v1/traces", PB, 200),
]


def test_unknown_content_type_is_counted_as_unknown_not_protobuf(make_daemon: Any) -> None:
    daemon: InProcessDaemon = make_daemon()
    body = trace_request(2)[0].SerializeToString()
    for method, path, headers, want in REQUESTS:
        r = httpx.request(method, daemon.ep.http_url + path, content=body, headers=headers, timeout=30)
        assert r.status_code == want, (method, path, headers, r.content[:200])
        if want != 200 and headers.get("content-type") != "application/json":
            assert r.headers["content-type"] == "application/x-protobuf"
            assert status_pb2.Status.FromString(r.content).message

    counters = daemon.get("/api/v1/status").json()["receivers"]["counters"]
    http = counters["traces"]["http"]
    assert http["unknown"] == {
        "requests": 4,
        "items_received": 0,
        "items_accepted": 0,
        "items_refused": 0,
        "items_rejected": 0,
        "outcomes": {"unsupported": 3, "bad_method": 1},
    }
    assert http["protobuf"]["outcomes"] == {"ok": 1} and http["protobuf"]["items_accepted"] == 2
    # A known Content-Type with a bad Content-Encoding is still that encoding's refusal.
    assert http["json"]["outcomes"] == {"unsupported": 1}
    assert counters[""]["http"] == {
        "unknown": {**http["unknown"], "requests": 1, "outcomes": {"not_found": 1}}
    }

    metrics = daemon.get("/metrics").text
    line = 'otel_ai_receiver_requests_total{encoding="unknown",outcome="unsupported",signal="traces",transport="http"} 3.0'
    assert line in metrics
    assert 'encoding="protobuf",outcome="unsupported"' not in metrics
