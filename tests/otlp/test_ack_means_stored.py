"""A 2xx means stored and findable: every defect of the hardening issue, in both ack modes.

Each case sends one body over real HTTP or gRPC to a real daemon (``pipeline.ack: insert`` and
``spool``) and checks the answer (200 with ``partial_success``, or 400 / INVALID_ARGUMENT), the
reason counted in ``/metrics``, and that exactly the acknowledged items can be queried — none
dropped after the ack (``otel_ai_pipeline_dropped_items_total`` stays 0).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_ai.testing import otlp_cases as c
from otel_ai.testing.daemons import InProcessDaemon, daemon_config

RESPONSES = {
    "traces": (ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points", "rejectedDataPoints"),
}
SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}
LIMITS = {
    "ingest.max_attributes": 64,
    "ingest.max_attribute_bytes": 4096,
    "ingest.max_resource_amplification": 16,
}


@dataclass(frozen=True)
class Case:
    signal: str
    transport: str
    encoding: str
    build: Callable[[str], bytes]  # tag (hex trace id, or service name) -> body
    stored: int  # items that must be queryable
    rejected: int = 0  # items reported in partial_success (0 and refused=False: plain success)
    refused: bool = False  # the whole request answered 400 / INVALID_ARGUMENT
    reason: str = ""


def _tid(tag: str) -> bytes:
    return bytes.fromhex(tag)


NOW = c.now_ns


def _amplified(tag: str) -> bytes:
    return c.traces_pb(_tid(tag), [NOW()] * 4000, resource_attr="r" * 3000)


CASES = [
    pytest.param(Case("traces", "http", "protobuf", lambda t: c.traces_pb(_tid(t), [NOW(), c.YEAR_2300_NS]),
                      1, 1, reason="time_out_of_range"), id="span-in-year-2300"),
    pytest.param(Case("traces", "grpc", "protobuf", lambda t: c.traces_pb(_tid(t), [NOW(), 2**63]),
                      1, 1, reason="time_out_of_range"), id="span-at-2^63-grpc"),
    pytest.param(Case("traces", "http", "protobuf", lambda t: c.traces_pb(_tid(t), [NOW(), 2**64 - 1]),
                      1, 1, reason="time_out_of_range"), id="span-at-2^64-1"),
    pytest.param(Case("traces", "http", "protobuf", lambda t: c.traces_pb(_tid(t), [NOW(), 0]),
                      1, 1, reason="time_out_of_range"), id="span-at-0"),
    pytest.param(Case("traces", "grpc", "protobuf", lambda t: c.traces_pb(_tid(t), [NOW(), NOW() - 30 * c.DAY_NS]),
                      1, 1, reason="older_than_retention"), id="span-past-retention"),
    pytest.param(Case("traces", "http", "protobuf",
                      lambda t: c.traces_pb(_tid(t), [NOW(), NOW()],
                                            tweak=lambda sp: sp[1].events.add(time_unix_nano=2**63 + 1, name="e")),
                      1, 1, reason="time_out_of_range"), id="event-at-2^63"),
    pytest.param(Case("traces", "http", "json",
                      lambda t: c.traces_json(c.span_json(t, "0000000000000001", str(NOW())),
                                              c.span_json(t, "0000000000000002", "18446744073709551616")),
                      0, refused=True), id="json-start-2^64"),
    pytest.param(Case("traces", "http", "json",
                      lambda t: c.traces_json(c.span_json(t, "0000000000000001", str(NOW())),
                                              c.span_json(t, "0000000000000002", str(2**63))),
                      1, 1, reason="time_out_of_range"), id="json-start-2^63"),
    pytest.param(Case("traces", "http", "json",
                      lambda t: c.traces_json(c.span_json(t, "0000000000000001", "12x")), 0, refused=True),
                 id="json-bad-timestamp"),
    pytest.param(Case("traces", "http", "json",
                      lambda t: c.traces_json(c.span_json(t, "0000000000000001", str(NOW()), attributes=[
                          {"key": "deep", "value": c.nested_kvlist_json(60)}])), 0, refused=True, reason="too_deep"),
                 id="json-nested-60-levels"),
    pytest.param(Case("traces", "http", "json",
                      lambda t: c.traces_json(c.span_json(t, "0000000000000001", str(NOW())))
                      .replace(b'"name": "j"', b'"name": "j", "name": "k"'), 0, refused=True, reason="duplicate_key"),
                 id="json-duplicate-key"),
    pytest.param(Case("traces", "grpc", "protobuf", lambda t: c.nested_kvlist_pb(40, _tid(t), NOW()), 0, refused=True),
                 id="protobuf-nested-40-levels"),
    pytest.param(Case("traces", "http", "protobuf", lambda t: c.nested_kvlist_pb(8, _tid(t), NOW()), 1),
                 id="protobuf-nested-8-levels-ok"),
    pytest.param(Case("traces", "http", "protobuf",
                      lambda t: c.traces_pb(_tid(t), [NOW(), NOW()], tweak=lambda sp: [
                          sp[1].attributes.add(key=f"a{i}").value.__setattr__("int_value", i) for i in range(100)]),
                      1, 1, reason="too_many_attributes"), id="too-many-attributes"),
    pytest.param(Case("traces", "grpc", "protobuf",
                      lambda t: c.traces_pb(_tid(t), [NOW(), NOW()], tweak=lambda sp: sp[1].attributes.add(
                          key="big").value.__setattr__("string_value", "x" * 10_000)),
                      1, 1, reason="attribute_too_large"), id="attribute-too-large"),
    pytest.param(Case("traces", "http", "protobuf", _amplified, 0, refused=True, reason="resource_amplification"),
                 id="resource-amplification"),
    pytest.param(Case("logs", "http", "protobuf", lambda t: c.logs_pb(t, [NOW(), c.YEAR_2300_NS, 2**63]),
                      1, 2, reason="time_out_of_range"), id="logs-out-of-range"),
    pytest.param(Case("logs", "grpc", "protobuf", lambda t: c.logs_pb(t, [NOW(), 0]),
                      1, 1, reason="time_out_of_range"), id="logs-without-any-time-grpc"),
    pytest.param(Case("logs", "http", "json", lambda t: c.logs_json_raw(t, NOW(), ',"body":{"stringValue":"y"}'),
                      0, refused=True, reason="duplicate_key"), id="logs-json-duplicate-key"),
    pytest.param(Case("logs", "http", "json", lambda t: c.logs_json_raw(t, NOW()), 1), id="logs-json-ok"),
    pytest.param(Case("metrics", "http", "protobuf", lambda t: c.metrics_pb(t, [NOW(), 2**63 + 7]),
                      1, 1, reason="time_out_of_range"), id="metrics-at-2^63"),
    pytest.param(Case("metrics", "grpc", "protobuf", lambda t: c.metrics_pb(t, [NOW(), NOW() - 20 * c.DAY_NS]),
                      1, 1, reason="older_than_retention"), id="metrics-past-retention-grpc"),
    pytest.param(Case("metrics", "http", "json", lambda t: c.metrics_json(t, NOW(), c.nested_kvlist_json(60)),
                      0, refused=True, reason="too_deep"), id="metrics-json-nested-60-levels"),
    pytest.param(Case("metrics", "http", "json", lambda t: c.metrics_json(t, NOW(), {"intValue": "5"}), 1),
                 id="metrics-json-ok"),
]  # fmt: skip


@pytest.fixture(scope="module", params=["insert", "spool"])
def daemon(
    request: pytest.FixtureRequest, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessDaemon]:
    extra = {"pipeline.ack": request.param, "pipeline.batch_timeout_ms": 50, **LIMITS}
    cfg, ep = daemon_config(chdb_path, extra=extra, tmp=tmp_path_factory.mktemp(f"ack-{request.param}"))
    d = InProcessDaemon(cfg, ep).start()
    yield d
    d.stop()
    dropped = d.daemon.registry.get_sample_value(
        "otel_ai_pipeline_dropped_items_total", {"reason": "invalid"}
    )
    assert not dropped, f"ack: {request.param} dropped {dropped} acknowledged items"


def _send(d: InProcessDaemon, case: Case, body: bytes) -> tuple[bool, int, str]:
    """(refused, rejected items, error message) of one export."""
    cls, pb_field, json_field = RESPONSES[case.signal]
    if case.transport == "grpc":
        with grpc.insecure_channel(d.ep.grpc) as ch:
            call = ch.unary_unary(f"/{SERVICES[case.signal]}/Export")
            try:
                raw = call(body, timeout=30)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
                return True, 0, exc.details() or ""
        resp = cls.FromString(raw)
        return False, getattr(resp.partial_success, pb_field), resp.partial_success.error_message
    ctype = "application/x-protobuf" if case.encoding == "protobuf" else "application/json"
    r = httpx.post(
        f"{d.ep.http_url}/v1/{case.signal}", content=body, headers={"content-type": ctype}, timeout=30
    )
    if r.status_code == 400:
        return True, 0, r.text
    assert r.status_code == 200, (r.status_code, r.text)
    if case.encoding == "json":
        ps = json.loads(r.content).get("partialSuccess", {})
        return False, int(ps.get(json_field, 0)), ps.get("errorMessage", "")
    resp = cls.FromString(r.content)
    return False, getattr(resp.partial_success, pb_field), resp.partial_success.error_message


_COUNT = {
    "traces": "SELECT count() FROM {db:Identifier}.otel_traces WHERE TraceId = {tag:String}",
    "logs": "SELECT count() FROM {db:Identifier}.otel_logs WHERE ServiceName = {tag:String}",
    "metrics": "SELECT count() FROM {db:Identifier}.otel_metrics_gauge WHERE ServiceName = {tag:String}",
}


def _stored(d: InProcessDaemon, case: Case, tag: str, ack: str) -> int:
    storage = d.daemon.storage
    params = {"db": storage.database, "tag": tag}
    deadline = time.monotonic() + (20 if ack == "spool" else 0)
    while True:
        n = int(storage.query(_COUNT[case.signal], params)[0][0])
        if n >= case.stored or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


@pytest.mark.parametrize("case", CASES)
def test_an_ack_means_stored_and_findable(daemon: InProcessDaemon, case: Case) -> None:
    ack = daemon.config.pipeline.ack
    tag = os.urandom(16).hex() if case.signal == "traces" else f"svc-{os.urandom(6).hex()}"
    reg = daemon.daemon.registry
    metric = (
        "otel_ai_receiver_rejected_requests_total"
        if case.refused
        else "otel_ai_receiver_rejected_items_total"
    )
    labels = {"signal": case.signal, "reason": case.reason}
    before = reg.get_sample_value(metric, labels) or 0.0

    refused, rejected, message = _send(daemon, case, case.build(tag))

    assert (refused, rejected) == (case.refused, case.rejected), message
    if case.reason:
        assert case.reason.replace("_", " ") in message or case.reason in message or refused, message
        assert (reg.get_sample_value(metric, labels) or 0.0) - before == (case.rejected or 1)
    assert _stored(daemon, case, tag, ack) == case.stored
    if ack == "spool":  # nothing more arrives later either
        time.sleep(0.3)
        assert _stored(daemon, case, tag, "insert") == case.stored
