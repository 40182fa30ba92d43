"""Every OTLP field round-trips into the contrib tables exactly as the contrib exporter encodes it.

Each case writes the same request through one decoder (engine, python) in one encoding
(protobuf, JSON) and reads it back with SQL and through the ``GET /api/v1/traces/{id}`` shape.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from otel_ai.api.routes_core import TRACE_SQL, _span
from otel_ai.otlp.validate import validate
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing import otlp_samples as s
from otel_ai.timeutil import ns_to_rfc3339

KEEP_JSON = "keep_json"
CASES = [
    pytest.param("engine", "protobuf", "grpc", {}, id="engine-protobuf"),
    pytest.param("python", "protobuf", "http", {}, id="python-protobuf"),
    pytest.param("engine", "json", "http", {}, id="engine-json"),
    pytest.param(
        "python", "json", "http", {"int64_as_numbers": True, "enum_names": True}, id="python-json-lenient"
    ),
    # The decoders' own JSON paths: trace requests the C transcoder declines stay JSON to the end.
    pytest.param("engine", "json", "http", {KEEP_JSON: True}, id="engine-json-kept"),
    pytest.param("python", "json", "grpc", {KEEP_JSON: True, "enum_names": True}, id="python-json-kept"),
]


def _body(req: Any, encoding: str, json_opts: dict[str, Any]) -> bytes:
    opts = {k: v for k, v in json_opts.items() if k != KEEP_JSON}
    return req.SerializeToString() if encoding == "protobuf" else s.to_json(req, **opts)


def _write(
    storage: Storage,
    decoder: str,
    signal: str,
    encoding: str,
    transport: str,
    body: bytes,
    opts: dict[str, Any],
) -> None:
    payload = validate(signal, encoding, transport, body)  # type: ignore[arg-type]
    assert payload.rejected == 0
    # Validation hands OTLP/JSON requests on as protobuf (traces transcoded in C) ...
    assert payload.wire == ("protobuf" if encoding == "json" else None)
    if opts.get(KEEP_JSON):  # ... unless the transcoder declines: then the decoders read the JSON
        payload = dataclasses.replace(payload, body=body, wire=None)
    writer = TelemetryWriter(storage, decoder=decoder)
    writer.write([payload])
    if decoder == "engine":
        # The engine renders every value itself except, in OTLP/JSON, an empty AnyValue (the
        # "empty" attribute), which cannot be told from an empty array there and goes to the
        # python decoder. See test_json_engine_without_ambiguous_values for the engine alone.
        handed_over = payload.body_encoding == "json" and signal != "metrics"
        assert writer._engine.fallbacks == (1 if handed_over else 0)


@pytest.mark.parametrize(("decoder", "encoding", "transport", "json_opts"), CASES)
def test_traces_fidelity(
    storage: Storage, decoder: str, encoding: str, transport: str, json_opts: dict[str, Any]
) -> None:
    _write(
        storage,
        decoder,
        "traces",
        encoding,
        transport,
        _body(s.traces_request(), encoding, json_opts),
        json_opts,
    )
    rows = storage.query(TRACE_SQL, {"db": storage.database, "id": s.TRACE_ID.hex()})
    spans = {sp.span_id: sp for sp in (_span(r) for r in rows)}
    assert set(spans) == {s.ROOT_ID.hex(), s.CHILD_ID.hex()}
    root, child = spans[s.ROOT_ID.hex()], spans[s.CHILD_ID.hex()]

    assert root.trace_id == s.TRACE_ID.hex()
    assert root.parent_span_id == ""
    assert child.parent_span_id == s.ROOT_ID.hex()
    assert (root.name, root.kind, child.kind) == ("GET /cart", "Server", "Client")
    assert root.service_name == "checkout"
    assert root.start_time == ns_to_rfc3339(s.NOW)
    assert (root.duration_ns, child.duration_ns) == (1_234_567, 10)
    assert (root.status_code, root.status_message, child.status_code) == (
        "Error",
        "boom: cart not found",
        "Ok",
    )
    assert root.attributes == s.ATTRS_STORED
    assert root.resource_attributes == s.RESOURCE_STORED
    assert (root.scope_name, root.scope_version) == ("io.opentelemetry.test", "0.9.1")
    assert root.scope_attributes == {"scope.attr": "7"}
    assert [(e.time, e.name, e.attributes) for e in root.events] == [
        (
            ns_to_rfc3339(s.NOW + 1000),
            "exception",
            {"exception.type": "KeyError", "exception.escaped": "false"},
        ),
        (ns_to_rfc3339(s.NOW + 2000), "retry", {"attempt": "2"}),
    ]
    assert [(ln.trace_id, ln.span_id, ln.trace_state, ln.attributes) for ln in root.links] == [
        (s.LINK_TRACE.hex(), s.LINK_SPAN.hex(), "k=v", {"messaging.system": "kafka"})
    ]
    assert root.trace_state == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert (root.flags, root.dropped_attributes_count, root.dropped_events_count, root.dropped_links_count) == (
        0x301, 1, 2, 3,
    )  # fmt: skip
    assert (root.encoding, root.transport) == (encoding, transport)
    assert child.events == [] and child.links == []

    # Columns the API does not expose, and the trace-id lookup table (its MV must have fired).
    db = storage.database
    (urls,) = storage.query(
        "SELECT ResourceSchemaUrl, ScopeSchemaUrl, toUnixTimestamp64Nano(Timestamp) FROM {db:Identifier}.otel_traces "
        "WHERE SpanId = {id:String}",
        {"db": db, "id": s.ROOT_ID.hex()},
    )
    assert urls == (
        "https://opentelemetry.io/schemas/1.26.0",
        "https://opentelemetry.io/schemas/1.21.0",
        s.NOW,
    )
    lookup = storage.query("SELECT TraceId FROM {db:Identifier}.otel_traces_trace_id_ts", {"db": db})
    assert lookup and {r[0] for r in lookup} == {s.TRACE_ID.hex()}


@pytest.mark.parametrize(("decoder", "encoding", "transport", "json_opts"), CASES)
def test_logs_fidelity(
    storage: Storage, decoder: str, encoding: str, transport: str, json_opts: dict[str, Any]
) -> None:
    _write(
        storage, decoder, "logs", encoding, transport, _body(s.logs_request(), encoding, json_opts), json_opts
    )
    rows = storage.query_dicts(
        "SELECT toUnixTimestamp64Nano(Timestamp) AS ts, toUnixTimestamp64Nano(ObservedTimestamp) AS obs, * "
        "FROM {db:Identifier}.otel_logs ORDER BY ObservedTimestamp",
        {"db": storage.database},
    )
    assert len(rows) == 2
    r, r2 = rows
    assert (r["ts"], r["obs"]) == (s.NOW, s.NOW + 5)
    assert (r["TraceId"], r["SpanId"], r["TraceFlags"]) == (s.TRACE_ID.hex(), s.ROOT_ID.hex(), 1)
    assert (r["SeverityText"], r["SeverityNumber"], r["Body"]) == ("ERROR", 17, "payment failed")
    assert r["ServiceName"] == "checkout"
    assert dict(r["LogAttributes"]) == s.ATTRS_STORED
    assert dict(r["ResourceAttributes"]) == s.RESOURCE_STORED
    assert dict(r["ScopeAttributes"]) == {"scope.attr": "7"}
    assert (r["ScopeName"], r["ScopeVersion"]) == ("io.opentelemetry.test", "0.9.1")
    assert (r["ResourceSchemaUrl"], r["ScopeSchemaUrl"]) == (
        "https://opentelemetry.io/schemas/1.26.0", "https://opentelemetry.io/schemas/1.21.0",
    )  # fmt: skip
    assert (r["EventName"], r["DroppedAttributesCount"]) == ("payment.failure", 4)
    assert (r["IngestEncoding"], r["IngestTransport"]) == (encoding, transport)
    # contrib: no timestamp → the observed time; kvlist body → sorted JSON
    assert (r2["ts"], r2["Body"], r2["TraceId"], r2["SpanId"]) == (s.NOW + 7, '{"a":true,"b":2}', "", "")


@pytest.mark.parametrize(("decoder", "encoding", "transport", "json_opts"), CASES)
def test_metrics_fidelity(
    storage: Storage, decoder: str, encoding: str, transport: str, json_opts: dict[str, Any]
) -> None:
    _write(
        storage,
        decoder,
        "metrics",
        encoding,
        transport,
        _body(s.metrics_request(), encoding, json_opts),
        json_opts,
    )

    def one(table: str) -> dict[str, Any]:
        rows = storage.query_dicts(
            "SELECT toUnixTimestamp64Nano(TimeUnix) AS t, toUnixTimestamp64Nano(StartTimeUnix) AS st, * "
            "FROM {db:Identifier}.{t:Identifier}",
            {"db": storage.database, "t": table},
        )
        assert len(rows) == 1, table
        row = rows[0]
        assert (row["t"], row["st"]) == (s.NOW, s.NOW - 10**9)
        assert row["ServiceName"] == "checkout"
        assert dict(row["Attributes"]) == {"http.route": "/cart", "code": "200"}
        assert dict(row["ResourceAttributes"]) == s.RESOURCE_STORED
        assert dict(row["ScopeAttributes"]) == {"scope.attr": "7"}
        assert (row["ScopeName"], row["ScopeVersion"], row["ScopeDroppedAttrCount"]) == (
            "io.opentelemetry.test", "0.9.1", 2,
        )  # fmt: skip
        assert (row["ResourceSchemaUrl"], row["ScopeSchemaUrl"]) == (
            "https://opentelemetry.io/schemas/1.26.0", "https://opentelemetry.io/schemas/1.21.0",
        )  # fmt: skip
        assert (row["IngestEncoding"], row["IngestTransport"]) == (encoding, transport)
        return row

    def exemplars(row: dict[str, Any]) -> list[tuple[Any, ...]]:
        return list(
            zip(
                [dict(a) for a in row["Exemplars.FilteredAttributes"]], row["Exemplars.Value"],
                row["Exemplars.SpanId"], row["Exemplars.TraceId"], strict=True,
            )
        )  # fmt: skip

    g = one("otel_metrics_gauge")
    assert (g["MetricName"], g["MetricDescription"], g["MetricUnit"], g["Value"], g["Flags"]) == (
        "queue.depth", "items queued", "{item}", 17.0, 1,
    )  # fmt: skip
    assert exemplars(g) == [({"user": "u1"}, 12.0, s.ROOT_ID.hex(), s.TRACE_ID.hex())]
    sm = one("otel_metrics_sum")
    assert (sm["MetricName"], sm["Value"], sm["AggregationTemporality"], sm["IsMonotonic"]) == (
        "requests",
        1.5,
        2,
        True,
    )
    assert exemplars(sm) == []
    h = one("otel_metrics_histogram")
    assert (h["Count"], h["Sum"], h["BucketCounts"], h["ExplicitBounds"], h["Min"], h["Max"]) == (
        6, 21.5, [1, 3, 2], [1.0, 5.0], 0.5, 9.0,
    )  # fmt: skip
    assert h["AggregationTemporality"] == 1
    assert exemplars(h) == [({"user": "u1"}, 12.0, s.ROOT_ID.hex(), s.TRACE_ID.hex())]
    e = one("otel_metrics_exponential_histogram")
    assert (e["Count"], e["Sum"], e["Scale"], e["ZeroCount"], e["Min"], e["Max"]) == (5, 12.0, 3, 1, 0.1, 7.0)
    assert (e["PositiveOffset"], e["PositiveBucketCounts"], e["NegativeOffset"], e["NegativeBucketCounts"]) == (
        -2, [1, 2], 1, [1],
    )  # fmt: skip
    assert e["AggregationTemporality"] == 2
    q = one("otel_metrics_summary")
    assert (q["Count"], q["Sum"], q["ValueAtQuantiles.Quantile"], q["ValueAtQuantiles.Value"]) == (
        10, 2.5, [0.5, 0.99], [0.2, 0.9],
    )  # fmt: skip


def test_json_engine_without_ambiguous_values(storage: Storage) -> None:
    """The engine's own JSON rendering of every value type (no python fallback involved)."""
    req = s.traces_request()
    attrs = req.resource_spans[0].scope_spans[0].spans[0].attributes
    keep = [kv for kv in attrs if kv.key not in ("empty", "empty.array")]
    del attrs[:]
    attrs.extend(keep)
    writer = TelemetryWriter(storage, decoder="engine")
    body = s.to_json(req, int64_as_numbers=True, enum_names=True)
    # The client's JSON itself (validation would hand it on transcoded to protobuf).
    writer.write([dataclasses.replace(validate("traces", "json", "http", body), body=body, wire=None)])
    assert writer._engine.fallbacks == 0
    rows = storage.query(TRACE_SQL, {"db": storage.database, "id": s.TRACE_ID.hex()})
    root = next(sp for sp in (_span(r) for r in rows) if sp.span_id == s.ROOT_ID.hex())
    want = {k: v for k, v in s.ATTRS_STORED.items() if k not in ("empty", "empty.array")}
    assert root.attributes == want
    assert (root.kind, root.status_code, root.start_time) == ("Server", "Error", ns_to_rfc3339(s.NOW))
