"""End to end with the official OpenTelemetry JavaScript SDK exporters against a running daemon.

``tests/js/export.mjs`` (Node, exact package versions in ``tests/js/package-lock.json``; ``make
test`` installs them) exports a SERVER span continuing a remote parent, its CLIENT child and a
root span of another trace over gRPC, HTTP/protobuf and HTTP/JSON, plain, gzip, or configured by
the standard ``OTEL_EXPORTER_OTLP_*`` variables alone; every span is read back through
``GET /api/v1/traces/{id}`` and compared whole, every field. The JS SDK
differs from the Python one where it matters to a receiver: the JSON exporter sends hex ids,
int64 attributes as JSON numbers, timestamps as decimal strings and ``{}`` for a null array
element; protobuf goes through protobufjs; gRPC through @grpc/grpc-js.

The script exits non-zero unless the daemon acknowledged every export, and the daemon
acknowledges only after the insert (or the spool), so nothing here waits or polls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_ai.testing.daemons import InProcessDaemon, daemon_config, free_port
from otel_ai.timeutil import ns_to_rfc3339

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")
INSTALLED = (JS_DIR / "node_modules" / "@opentelemetry" / "sdk-trace-base").is_dir()

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (needed for the JavaScript SDK test)"),
    pytest.mark.skipif(
        not INSTALLED,
        reason="tests/js/node_modules is missing: run `make js-deps` (npm ci --prefix tests/js)",
    ),
]

# (id, protocol, compression, expected encoding, expected transport). Compression "env": the
# exporter is configured only by OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_COMPRESSION=gzip.
CASES = [
    ("grpc", "grpc", "none", "protobuf", "grpc"),
    ("grpc-gzip", "grpc", "gzip", "protobuf", "grpc"),
    ("grpc-env", "grpc", "env", "protobuf", "grpc"),
    ("http-protobuf", "http/protobuf", "none", "protobuf", "http"),
    ("http-protobuf-gzip", "http/protobuf", "gzip", "protobuf", "http"),
    ("http-json", "http/json", "none", "json", "http"),
    ("http-json-gzip", "http/json", "gzip", "json", "http"),
    ("http-json-env", "http/json", "env", "json", "http"),
]

# What export.mjs sends, as the API renders it (contrib encoding: every attribute value is a string;
# arrays are JSON; JavaScript numbers that are integers travel as intValue, others as doubleValue).
RESOURCE = {
    "service.name": "js-checkout",
    "service.version": "2.4.1",
    "deployment.environment.name": "e2e",
    "host.cpus": "8",
    "app.ratio": "0.75",
    "app.canary": "false",
    "app.regions": '["eu-west-1","us-east-2"]',
}
SERVER_ATTRS = {
    "http.request.method": "GET",
    "http.response.status_code": "503",
    "app.big_int": "4294967296123",
    "app.negative": "-17",
    "app.ratio": "0.125",
    "app.retried": "true",
    "app.unicode": 'héllo ✓ "quoted"',
    "app.empty": "",
    "app.tags": '["a","b","c"]',
    "app.codes": "[200,404,503]",
    "app.weights": "[0.5,1.25]",
    "app.flags": "[true,false]",
    "app.sparse": '["x",null,"z"]',
}
CLIENT_ATTRS = {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM orders WHERE id = $1"}
SCOPE = {"scope_name": "otel-ai-js-e2e", "scope_version": "1.2.3", "scope_attributes": {}}
# OTLP SpanFlags: W3C sampled (0x01) | CONTEXT_HAS_IS_REMOTE (0x100) | CONTEXT_IS_REMOTE (0x200).
SERVER_FLAGS, CLIENT_FLAGS = 0x301, 0x101  # remote parent; local parent (or none)


@pytest.fixture(scope="module")
def daemon(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDaemon]:
    cfg, ep = daemon_config(
        chdb_path, tmp=tmp_path_factory.mktemp("js-sdk"), extra={"pipeline.batch_timeout_ms": 20}
    )
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()


def run_export(endpoint: str, protocol: str, compression: str) -> subprocess.CompletedProcess[str]:
    """Run export.mjs; the caller's OTEL_* variables are not passed on (they would change the trace)."""
    assert NODE is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    args = [endpoint, protocol, compression]
    if compression == "env":
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
        args = ["env", protocol]
    return subprocess.run(
        [NODE, str(JS_DIR / "export.mjs"), *args],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def expected_spans(out: dict[str, Any], encoding: str, transport: str) -> dict[str, dict[str, Any]]:
    """The two spans exactly as ``GET /api/v1/traces/{id}`` must render them, keyed by name."""
    base_ns = int(out["server_start_ns"]) - 123_456_789  # export.mjs: times are base + fixed ns

    def event(ns: int, name: str, attributes: dict[str, str]) -> dict[str, Any]:
        return {"time": ns_to_rfc3339(base_ns + ns), "name": name, "attributes": attributes}

    common = {
        "trace_id": out["trace_id"],
        "service_name": "js-checkout",
        "resource_attributes": RESOURCE,
        "encoding": encoding,
        "transport": transport,
        "trace_state": "vendor=abc,other=1",
        "dropped_attributes_count": 0,
        "dropped_links_count": 0,
        **SCOPE,
    }
    server = {
        **common,
        "span_id": out["server_span_id"],
        "parent_span_id": out["remote_parent_id"],
        "name": "GET /api/checkout",
        "kind": "Server",
        "start_time": ns_to_rfc3339(int(out["server_start_ns"])),
        "duration_ns": 900_000_000,
        "status_code": "Error",
        "status_message": "upstream failed",
        "attributes": SERVER_ATTRS,
        "events": [
            event(150_000_000, "request.received", {"net.peer.port": "51234", "net.sock.family": "inet"})
        ],
        "links": [
            {
                "trace_id": out["linked_trace_id"],
                "span_id": out["linked_span_id"],
                "trace_state": "linked=yes",
                "attributes": {"link.reason": "retry-of", "link.attempt": "2"},
            }
        ],
        "flags": SERVER_FLAGS,
        "dropped_events_count": 0,
    }
    client = {
        **common,
        "span_id": out["client_span_id"],
        "parent_span_id": out["server_span_id"],
        "name": "SELECT orders",
        "kind": "Client",
        "start_time": ns_to_rfc3339(int(out["client_start_ns"])),
        "duration_ns": 250_000_001,
        "status_code": "Error",
        "status_message": "deadlock detected",
        "attributes": CLIENT_ATTRS,
        # eventCountLimit 3: the SDK dropped the oldest of four events and counted it.
        "events": [
            event(220_000_000, "retry", {"attempt": "1", "backoff_s": "0.05"}),
            event(230_000_000, "retry", {"attempt": "2", "backoff_s": "0.1"}),
            event(
                240_000_000,
                "exception",
                {"exception.type": "DeadlockDetected", "exception.escaped": "false"},
            ),
        ],
        "links": [],
        "flags": CLIENT_FLAGS,
        "dropped_events_count": 1,
    }
    return {"GET /api/checkout": server, "SELECT orders": client}


def expected_root(out: dict[str, Any], encoding: str, transport: str) -> dict[str, Any]:
    """The root span export.mjs sends in a trace of its own."""
    return {
        "trace_id": out["root_trace_id"],
        "span_id": out["root_span_id"],
        "parent_span_id": "",
        "name": "cache.warmup",
        "kind": "Internal",
        "service_name": "js-checkout",
        "start_time": ns_to_rfc3339(int(out["root_start_ns"])),
        "duration_ns": 500,
        "status_code": "Unset",
        "status_message": "",
        "attributes": {"cache.entries": "0"},
        "resource_attributes": RESOURCE,
        "events": [],
        "links": [],
        "encoding": encoding,
        "transport": transport,
        "trace_state": "",
        "flags": CLIENT_FLAGS,  # sampled, has-is-remote, not remote
        "dropped_attributes_count": 0,
        "dropped_events_count": 0,
        "dropped_links_count": 0,
        **SCOPE,
    }


@pytest.mark.parametrize(
    ("protocol", "compression", "encoding", "transport"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_js_sdk_trace_round_trip(
    daemon: InProcessDaemon, protocol: str, compression: str, encoding: str, transport: str
) -> None:
    endpoint = f"http://{daemon.ep.grpc}" if protocol == "grpc" else daemon.ep.http_url
    proc = run_export(endpoint, protocol, compression)
    assert proc.returncode == 0, f"export.mjs failed:\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    out = json.loads(proc.stdout)
    assert out["exports"] == 3  # SimpleSpanProcessor: one export per ended span, all acknowledged
    daemon.wait_inserted()  # acknowledged at the write-ahead log (the default); queried once inserted

    r = daemon.get(f"/api/v1/traces/{out['trace_id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trace_id"] == out["trace_id"]
    got = {s["name"]: s for s in body["spans"]}
    want = expected_spans(out, encoding, transport)
    assert sorted(got) == sorted(want)
    for name, span in want.items():
        assert got[name] == span, name

    r = daemon.get(f"/api/v1/traces/{out['root_trace_id']}")
    assert r.status_code == 200, r.text
    assert r.json()["spans"] == [expected_root(out, encoding, transport)]


def test_js_sdk_export_failure_is_reported() -> None:
    """The round-trip test relies on export.mjs failing loudly when nothing acknowledges."""
    proc = run_export(f"http://127.0.0.1:{free_port()}", "http/protobuf", "none")
    assert proc.returncode != 0
    assert "ECONNREFUSED" in proc.stderr
