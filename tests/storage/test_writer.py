"""TelemetryWriter: mixed batches, the engine's python fallback, and the errors the pipeline relies on."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload
from otel_ai.otlp.validate import validate
from otel_ai.storage import Storage
from otel_ai.storage.decoders.values import go_float, go_json
from otel_ai.storage.writer import TelemetryWriter
from otel_ai.testing import otlp_samples as s
from otel_ai.testing.daemons import free_port
from otel_ai.testing.stores import storage_at


def _stored_attrs(storage: Storage) -> dict[str, str]:
    rows = storage.query(
        "SELECT SpanAttributes FROM {db:Identifier}.otel_traces WHERE SpanId = {id:String}",
        {"db": storage.database, "id": s.ROOT_ID.hex()},
    )
    assert len(rows) == 1
    return dict(rows[0][0])


@pytest.mark.parametrize("decoder", ["engine", "python"])
def test_mixed_batch_keeps_encoding_and_transport_per_row(storage: Storage, decoder: str) -> None:
    batch = []
    for i, (enc, tr) in enumerate(
        [("protobuf", "grpc"), ("protobuf", "http"), ("json", "http"), ("json", "grpc")]
    ):
        req = s.traces_request()
        for span in req.resource_spans[0].scope_spans[0].spans:
            span.trace_id = bytes([i + 1]) * 16
        body = req.SerializeToString() if enc == "protobuf" else s.to_json(req)
        batch.append(validate("traces", enc, tr, body))  # type: ignore[arg-type]
    TelemetryWriter(storage, decoder=decoder).write(batch)
    rows = storage.query(
        "SELECT substring(TraceId, 1, 2), IngestEncoding, IngestTransport, count() FROM {db:Identifier}.otel_traces "
        "GROUP BY 1, 2, 3 ORDER BY 1",
        {"db": storage.database},
    )
    assert rows == [("01", "protobuf", "grpc", 2), ("02", "protobuf", "http", 2), ("03", "json", "http", 2),
                    ("04", "json", "grpc", 2)]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "stored", "fallbacks"),
    [
        pytest.param([[1, 2], "x"], '[[1,2],"x"]', 1, id="array-in-array"),
        pytest.param({"k": {"deep": True}}, '{"k":{"deep":true}}', 1, id="kvlist-in-kvlist"),
        pytest.param([float("nan")], "", 1, id="nan-in-array"),
        pytest.param(["esc\x1b"], '["esc\\u001b"]', 1, id="upper-hex-control-char"),
        pytest.param(["bell\x07", "a/b", "<&>"], '["bell\\u0007","a/b","\\u003c\\u0026\\u003e"]', 0,
                     id="escapes-in-sql"),
        pytest.param(["line\u2028sep"], '["line\\u2028sep"]', 0, id="u2028-in-array"),
    ],
)  # fmt: skip
def test_engine_falls_back_to_python_for_values_sql_cannot_render(
    storage: Storage, value: object, stored: str, fallbacks: int
) -> None:
    req = s.traces_request()
    root = req.resource_spans[0].scope_spans[0].spans[0]
    s.add_attrs(root.attributes, {"tricky": value})
    registry = CollectorRegistry()
    writer = TelemetryWriter(storage, decoder="engine", registry=registry)
    writer.write([validate("traces", "protobuf", "grpc", req.SerializeToString())])
    assert writer._engine.fallbacks == fallbacks
    counted = registry.get_sample_value("otel_ai_writer_engine_fallbacks_total", {"signal": "traces"})
    assert (counted or 0) == fallbacks  # visible in /metrics
    attrs = _stored_attrs(storage)
    assert attrs["tricky"] == stored
    assert go_json(value) == stored
    assert {k: v for k, v in attrs.items() if k != "tricky"} == s.ATTRS_STORED


DOUBLES = [
    (float("nan"), "json: unsupported value: NaN"),
    (float("-inf"), "json: unsupported value: -Inf"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (123456789.125, "123456789.125"),
    (1e20, "100000000000000000000"),
    (-0.0, "-0"),
    (5e-324, "5e-324"),
    (0.000001, "0.000001"),
    (2.5e-7, "2.5e-7"),
    (-3e25, "-3e+25"),
]


@pytest.mark.parametrize("decoder", ["engine", "python"])
def test_doubles_are_formatted_like_pdata(storage: Storage, decoder: str) -> None:
    req = s.traces_request()
    s.add_attrs(
        req.resource_spans[0].scope_spans[0].spans[0].attributes,
        {f"d{i}": v for i, (v, _) in enumerate(DOUBLES)},
    )
    writer = TelemetryWriter(storage, decoder=decoder)
    writer.write([validate("traces", "protobuf", "http", req.SerializeToString())])
    attrs = _stored_attrs(storage)
    assert [attrs[f"d{i}"] for i in range(len(DOUBLES))] == [want for _, want in DOUBLES]
    assert [go_float(v) for v, _ in DOUBLES] == [want for _, want in DOUBLES]
    if decoder == "engine":
        assert writer._engine.fallbacks == 0


def test_go_json_matches_encoding_json() -> None:
    assert (
        go_json({"b": [1, 2.5, "<&>"], "a": None, "c": b"\x00"})
        == '{"a":null,"b":[1,2.5,"\\u003c\\u0026\\u003e"],"c":"AA=="}'
    )
    assert go_json([float("inf")]) == ""


@pytest.mark.parametrize("decoder", ["engine", "python"])
def test_undecodable_content_raises_decode_error(storage: Storage, decoder: str) -> None:
    """A payload that bypassed validation (e.g. replayed from an old spool) is a DecodeError, not a retry."""
    good = validate("traces", "protobuf", "http", s.traces_request().SerializeToString())
    bad = Payload("traces", "protobuf", "http", b"\x0a\xff\xff\xff\x0f garbage", items=1)
    with pytest.raises(DecodeError):
        TelemetryWriter(storage, decoder=decoder).write([good, bad])


def test_unreachable_server_is_a_retryable_storage_error() -> None:
    storage = storage_at(f"http://127.0.0.1:{free_port()}", "otel", connect_timeout_s=1, query_timeout_s=2)
    writer = TelemetryWriter(storage, decoder="engine")
    assert writer.decoder == "python"  # a remote server has no copy of our .proto
    with pytest.raises(StorageError) as info:
        writer.write([validate("traces", "protobuf", "http", s.traces_request().SerializeToString())])
    assert info.value.retryable


def test_empty_and_mixed_signal_batches(storage: Storage) -> None:
    writer = TelemetryWriter(storage, decoder="engine")
    writer.write([validate("traces", "protobuf", "http", b"")])  # nothing to insert: no error
    logs = validate("logs", "protobuf", "http", s.logs_request().SerializeToString())
    spans = validate("traces", "protobuf", "http", s.traces_request().SerializeToString())
    with pytest.raises(ValueError, match="one signal"):
        writer.write([logs, spans])


def test_scalar_proto_differs_from_the_full_one_only_in_top_level_composites() -> None:
    from otel_ai.storage.decoders.engine import PROTO, scalar_proto_path

    full, scalar = PROTO.read_text().splitlines(), scalar_proto_path().read_text().splitlines()
    changed = [(a.strip(), b.strip()) for a, b in zip(full, scalar, strict=True) if a != b]
    assert changed == [
        ("package otel_ai.ch;", "package otel_ai.chs;"),
        ("ArrayValue1 array_value = 5;", "bytes array_value = 5;"),
        ("KeyValueList1 kvlist_value = 6;", "bytes kvlist_value = 6;"),
    ]


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_engine_runs_scalar_batches_in_the_scalar_dialect_and_composites_in_the_full_one(
    storage: Storage, encoding: str
) -> None:
    """Arrays/kvlists make the scalar statement throw; it is re-run in full and nothing is lost."""
    from otel_ai.storage.decoders.engine import FULL_DIALECT_BATCHES

    writer = TelemetryWriter(storage, decoder="engine")
    engine = writer._engine
    # OTLP/JSON cannot tell an unset value from an empty one: the sample's "empty" attribute
    # (and an empty array) take the python fallback by design, so JSON leaves them out here.
    unset = {"empty", "empty.array"} if encoding == "json" else set()
    composite = {"array", "kvlist", "empty.array"}

    def request(without: set[str]) -> Any:
        req = s.traces_request()
        for rs in req.resource_spans:
            lists = [rs.resource.attributes]
            for ss in rs.scope_spans:
                lists.append(ss.scope.attributes)
                for sp in ss.spans:
                    lists += [sp.attributes, *(e.attributes for e in sp.events)]
                    lists += [li.attributes for li in sp.links]
            for attrs_list in lists:
                for k in reversed(range(len(attrs_list))):
                    if attrs_list[k].key in without:
                        del attrs_list[k]
        return req

    def expected(without: set[str]) -> dict[str, str]:
        return {k: v for k, v in s.ATTRS_STORED.items() if k not in without}

    plain = request(composite | unset)

    def payload(req: Any) -> Payload:
        if encoding == "protobuf":
            return validate("traces", "protobuf", "grpc", req.SerializeToString())
        # The client's JSON as such (validation would transcode it to protobuf): the JSON dialect.
        body = s.to_json(req)
        return dataclasses.replace(validate("traces", "json", "grpc", body), body=body, wire=None)

    writer.write([payload(plain)])
    assert engine.composite_retries == 0  # only scalar values: one statement in the scalar dialect
    assert _stored_attrs(storage) == expected(composite | unset)

    storage.command("TRUNCATE TABLE {db:Identifier}.otel_traces", {"db": storage.database})
    req = request(unset)  # every value type, arrays and kvlists included
    writer.write([payload(req)])
    assert engine.composite_retries == 1
    assert engine.fallbacks == 0
    assert _stored_attrs(storage) == expected(unset)
    n_spans = storage.query("SELECT count() FROM {db:Identifier}.otel_traces", {"db": storage.database})[0][0]
    assert n_spans == len(req.resource_spans[0].scope_spans[0].spans)  # no duplicate from the retry

    # The following batches of this signal go straight to the full dialect (no second attempt).
    for _ in range(3):
        writer.write([payload(req)])
    assert engine.composite_retries == 1
    dialect = "pb" if encoding == "protobuf" else "json"
    assert engine._full_left[(dialect, "traces", 0)] == FULL_DIALECT_BATCHES - 3


def _skipped_by(storage: Storage, table: str, where: str, index: str) -> tuple[int, int]:
    """(granules left, granules before) that ``index`` gives for ``where`` — EXPLAIN's view."""
    lines = [
        str(r[0]).strip()
        for r in storage.query(
            f"EXPLAIN indexes = 1 SELECT count() FROM `{storage.database}`.{table} WHERE {where}"
        )
    ]
    at = lines.index(f"Name: {index}")
    left, total = next(x for x in lines[at:] if x.startswith("Granules:")).split()[1].split("/")
    return int(left), int(total)


@pytest.mark.parametrize("decoder", ["native", "engine"])
def test_deferred_attribute_indexes_are_built_by_merges(chdb_path: Any, decoder: str) -> None:
    from otel_ai.testing.daemons import unique_db

    storage = storage_at(f"chdb://{chdb_path}", unique_db(), defer_attribute_indexes=True)
    storage.start()
    try:
        assert "idx_span_attr_key" in storage.insert_settings_clause()
        writer = TelemetryWriter(storage, decoder=decoder)
        writer.write([validate("traces", "protobuf", "http", s.traces_request().SerializeToString())])
        logs = s.logs_request()
        for res in logs.resource_logs:  # scalar attributes only: the engine writes it all itself
            del res.resource.attributes[:]
            for scope in res.scope_logs:
                del scope.scope.attributes[:]
                for rec in scope.log_records:
                    del rec.attributes[:]
                    rec.attributes.add(key="http.route", value={"string_value": "/pay"})
                    rec.body.string_value = "payment failed"
        writer.write([validate("logs", "protobuf", "http", logs.SerializeToString())])
        no_key = "SpanAttributes['no.such.key'] = 'x'"
        count = f"SELECT count() FROM `{storage.database}`.otel_traces WHERE SpanAttributes['int'] = '-42'"
        before = storage.query(count)[0][0]
        # Not built by the INSERT: the index keeps the granule; the trace-id index was built.
        assert _skipped_by(storage, "otel_traces", no_key, "idx_span_attr_key") == (1, 1)
        assert _skipped_by(storage, "otel_logs", "LogAttributes['no.such'] = 'x'", "idx_log_attr_key") == (
            1,
            1,
        )
        assert _skipped_by(storage, "otel_traces", "TraceId = 'ff'", "idx_trace_id") == (0, 1)
        for table in ("otel_traces", "otel_logs"):
            storage.command(f"OPTIMIZE TABLE `{storage.database}`.{table} FINAL")
        # ... the merge built them; the rows read back the same.
        assert _skipped_by(storage, "otel_traces", no_key, "idx_span_attr_key") == (0, 1)
        assert _skipped_by(storage, "otel_logs", "LogAttributes['no.such'] = 'x'", "idx_log_attr_key") == (
            0,
            1,
        )
        assert storage.query(count)[0][0] == before > 0
    finally:
        storage.command(f"DROP DATABASE IF EXISTS `{storage.database}`")


def test_attribute_indexes_built_at_insert_unless_deferred(storage: Storage) -> None:
    assert storage.insert_settings_clause() == ""  # Storage's default; the daemon's config defers
    TelemetryWriter(storage, decoder="native").write(
        [validate("traces", "protobuf", "http", s.traces_request().SerializeToString())]
    )
    assert _skipped_by(
        storage, "otel_traces", "SpanAttributes['no.such.key'] = 'x'", "idx_span_attr_key"
    ) == (0, 1)


def test_daemon_defers_by_default_and_config_turns_it_off(make_daemon: Any) -> None:
    on = make_daemon()
    assert "idx_span_attr_key" in on.daemon.storage.insert_settings_clause()
    off = make_daemon(extra={"storage.defer_attribute_indexes": False})
    assert off.daemon.storage.insert_settings_clause() == ""


def test_insert_files_go_beside_the_store_and_stale_ones_are_removed(storage: Storage) -> None:
    """The files the engine reads (native blocks, engine batches) go to ``<store>-scratch``, not
    the system temp dir; what a killed process left there over an hour ago goes at the next start,
    and a recent file (another writer's insert in flight) stays."""
    import os
    import time

    from otel_ai.storage.writer import STALE_SCRATCH_S

    scratch = storage.scratch_dir
    assert scratch is not None and scratch.name.endswith("-scratch")
    scratch.mkdir(parents=True, exist_ok=True)
    old = time.time() - STALE_SCRATCH_S - 60
    stale_file, stale_dir = scratch / "otel-ai-native-killed.native", scratch / "otel-ai-batch-killed"
    stale_dir.mkdir(exist_ok=True)
    (stale_dir / "0.pb").write_bytes(b"x")
    stale_file.write_bytes(b"x")
    recent, foreign = scratch / "otel-ai-native-inflight.native", scratch / "someone-elses.txt"
    recent.write_bytes(b"y")
    foreign.write_bytes(b"z")
    for path in (stale_file, stale_dir, foreign):
        os.utime(path, (old, old))

    writer = TelemetryWriter(storage, decoder="native")
    assert not stale_file.exists() and not stale_dir.exists()
    assert recent.exists() and foreign.exists()
    assert writer._native.tmp_dir == writer._engine.tmp_dir == str(scratch)

    before = set(scratch.iterdir())
    writer.write([validate("traces", "protobuf", "http", s.traces_request().SerializeToString())])
    writer.write([validate("logs", "protobuf", "http", s.logs_request().SerializeToString())])
    assert set(scratch.iterdir()) == before  # each insert removes its own file
    recent.unlink()
    foreign.unlink()
    assert storage_at("http://127.0.0.1:1/db").scratch_dir is None
