"""The "engine" decoder: ClickHouse decodes OTLP (protobuf and JSON) itself and flattens it in SQL.

docs/decisions/0003-decode-path.md. The batch's protobuf request bodies are written length-delimited to
temporary files and read with ``file(path, 'Protobuf', structure)`` using our OTLP schema
(``otel_ai/otlp/proto/otlp_clickhouse.proto``) and ``input_format_protobuf_oneof_presence=1``
(which ``AnyValue`` member is set), then ``INSERT INTO <contrib table> SELECT …`` flattens with
``ARRAY JOIN``, ``mapFromArrays`` and ``hex``. Each request gets two extra protobuf fields
appended (9001 encoding, 9002 transport — appending fields to a serialized message is valid
protobuf), so one INSERT carries mixed encodings/transports. OTLP/JSON bodies go the same way
as ``JSONEachRow`` rows (one body per line, the two tags injected as leading keys) read with
typed nested named tuples; see :mod:`.engine_sql` for both dialects.

Values are rendered like the contrib exporter's ``AsString`` (see :mod:`.values`): doubles
with ClickHouse's shortest round-trip formatting, exponent fixed to Go's ``e+21`` form; arrays and
kvlists as Go-style JSON. What the SQL cannot render exactly (values nested deeper than one level,
NaN/Inf inside arrays, rare control characters inside strings in arrays) raises a marked
exception and the batch is written by the python decoder instead (counted, never lost).

Embedded chDB only: a remote server would need the ``.proto`` in its ``format_schemas``
directory, so with ``http://`` storage the writer uses the python decoder (see the docs).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload
from otel_ai.otlp.wire import varint
from otel_ai.storage.decoders.engine_sql import COMPOSITE_MARK, FALLBACK_MARK, SCALAR, STATEMENTS, STRUCTURES
from otel_ai.storage.decoders.python import write_python
from otel_ai.storage.quoting import literal, quote

PROTO = Path(__file__).resolve().parents[2] / "otlp" / "proto" / "otlp_clickhouse.proto"


def scalar_proto(text: str) -> str:
    """``PROTO``'s text for the scalar dialect ("pbs"): top-level array/kvlist values as bytes."""
    out = text.replace("package otel_ai.ch;", "package otel_ai.chs;")
    out = out.replace("    ArrayValue1 array_value = 5;", "    bytes array_value = 5;")
    out = out.replace("    KeyValueList1 kvlist_value = 6;", "    bytes kvlist_value = 6;")
    if out.count("bytes array_value = 5;") != 2 or out.count("bytes kvlist_value = 6;") != 2:
        raise RuntimeError(f"{PROTO.name} changed shape: update scalar_proto")
    return out


@functools.cache
def scalar_proto_path() -> Path:
    """The scalar schema, written once per process into a private temporary directory."""
    directory = tempfile.mkdtemp(prefix="otel-ai-proto-")
    atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / "otlp_clickhouse_scalar.proto"
    path.write_text(scalar_proto(PROTO.read_text()))
    return path


# -- the decoder ----------------------------------------------------------------------------

_MESSAGES = {"traces": "TracesRequest", "logs": "LogsRequest", "metrics": "MetricsRequest"}
_JSON_SETTINGS = {
    "output_format_json_escape_forward_slashes": 0,
    "input_format_skip_unknown_fields": 1,
    "input_format_json_ignore_unknown_keys_in_named_tuple": 1,
    "input_format_json_defaults_for_missing_elements_in_named_tuple": 1,
    "input_format_json_read_objects_as_strings": 1,
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_numbers": 1,
    "input_format_json_try_infer_numbers_from_strings": 0,
}
_PB_SETTINGS = {
    "output_format_json_escape_forward_slashes": 0,
    "input_format_protobuf_oneof_presence": 1,
    "input_format_defaults_for_omitted_fields": 1,
}


def _string_field(number: int, value: str) -> bytes:
    data = value.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


_PB_TAGS = {
    (enc, tr): _string_field(9001, enc) + _string_field(9002, tr)
    for enc in ("protobuf", "json")
    for tr in ("grpc", "http")
}
_JSON_TAGS = {
    (enc, tr): f'{{"otel_ai_encoding":"{enc}","otel_ai_transport":"{tr}",'.encode()
    for enc in ("protobuf", "json")
    for tr in ("grpc", "http")
}


def _write_pb(fh: Any, p: Payload) -> None:
    tag = _PB_TAGS[(p.encoding, p.transport)]
    fh.write(varint(len(p.body) + len(tag)))
    fh.write(p.body)
    fh.write(tag)


def _write_json(fh: Any, p: Payload) -> None:
    body = p.body.lstrip()
    if not body.startswith(b"{") or body[1:].lstrip().startswith(b"}"):
        raise DecodeError("OTLP/JSON body is not a non-empty object")
    # One JSONEachRow row per body: the parser accepts newlines inside a row (it reads whole
    # objects), so the body is not re-serialised.
    fh.write(_JSON_TAGS[(p.encoding, p.transport)])
    fh.write(body[1:])
    fh.write(b"\n")


class EngineFallback(Exception):
    """The SQL met a value it cannot render exactly; the batch goes through the python decoder."""


class _Composite(Exception):
    """The scalar dialect met an array or kvlist value; run the statement in the full dialect."""


# After a statement met an array/kvlist value, the next this-many batches of its signal skip the
# scalar dialect (a sender that uses such attributes tends to use them in every batch; the
# scalar attempt is tried again afterwards, as traffic changes).
FULL_DIALECT_BATCHES = 64


class EngineDecoder:
    """Inserts payloads by letting ClickHouse decode them (embedded chDB)."""

    def __init__(
        self,
        storage: Any,
        *,
        fallback: Callable[[Sequence[Payload]], None] | None = None,
        tmp_dir: str | None = None,
        streams: int | None = None,
    ) -> None:
        self.storage = storage
        self.fallback = fallback  # what the SQL cannot render exactly; default: the python decoder
        self.streams = streams or max(1, min(4, os.cpu_count() or 1))
        self.tmp_dir = tmp_dir
        self.fallbacks = 0
        # Statements that met an array/kvlist value run in the full dialect for a while.
        self._full_left: dict[tuple[str, str, int], int] = {}
        self.composite_retries = 0

    def write(self, payloads: Sequence[Payload]) -> None:
        if self.fallback is None:
            self.fallback = partial(write_python, self.storage)
        for encoding in ("protobuf", "json"):
            group = [p for p in payloads if p.body_encoding == encoding]
            if not group:
                continue
            try:
                self.insert(group)
            except EngineFallback:
                self.fallbacks += 1
                self.fallback(group)
            except DecodeError:
                # The engine refused content validation accepted (upb parsed it): the python
                # decoder stores whatever upb parses, so an acknowledged request is not lost.
                # (At-least-once: a statement that ran before the refusal is written again.)
                self.fallbacks += 1
                self.fallback(group)

    def insert(self, payloads: Sequence[Payload]) -> None:
        """Files of the batch (one encoding), one ``INSERT … SELECT`` per target table.

        The batch is split over ``streams`` files read through one glob, so ClickHouse parses
        and flattens them on several threads (an input format parses one file on one thread).
        """
        signal, encoding = payloads[0].signal, payloads[0].body_encoding
        dialect = "pb" if encoding == "protobuf" else "json"
        write_one = _write_pb if dialect == "pb" else _write_json
        workdir = tempfile.mkdtemp(prefix="otel-ai-batch-", dir=self.tmp_dir)
        try:
            streams = max(1, min(self.streams, len(payloads)))
            for k in range(streams):
                with open(os.path.join(workdir, f"{k}.in"), "wb") as fh:
                    for p in payloads[k::streams]:
                        write_one(fh, p)
            fmt = "Protobuf" if dialect == "pb" else "JSONEachRow"
            glob = quote(os.path.join(workdir, "*.in"))
            db = f"`{self.storage.database}`"

            def sql(d: str, i: int) -> str:
                if d in ("json", "jsons"):
                    settings: dict[str, Any] = dict(_JSON_SETTINGS)
                else:
                    schema = scalar_proto_path() if d == "pbs" else PROTO
                    settings = dict(_PB_SETTINGS, format_schema=f"{schema}:{_MESSAGES[signal]}")
                # Settings go into the statement: settings passed to the driver cost a snapshot
                # query plus a SET and a restore per setting on every call (clickhouse-connect's
                # chDB backend), a dozen extra queries per batch.
                settings.update(self.storage.insert_settings)
                clause = " SETTINGS " + ", ".join(f"{k} = {literal(v)}" for k, v in settings.items())
                src = f"file({glob}, '{fmt}', {quote(STRUCTURES[d][signal])})"
                return STATEMENTS[(d, signal)][i].replace("{db}", db).replace("{src}", src) + clause

            for i in range(len(STATEMENTS[(dialect, signal)])):
                key = (dialect, signal, i)
                left = self._full_left.get(key, 0)
                if left <= 0:
                    try:
                        self._run(sql(SCALAR[dialect], i))
                        continue
                    except _Composite:  # nothing was written: the SELECT threw
                        self.composite_retries += 1
                        self._full_left[key] = FULL_DIALECT_BATCHES
                else:
                    self._full_left[key] = left - 1
                self._run(sql(dialect, i))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, sql: str) -> None:
        try:
            self.storage.command(sql)
        except StorageError as exc:
            # The mark right after "Exception: " is our throwIf firing; the mark elsewhere (the
            # query text quoted in some other error) is not.
            if f"Exception: {FALLBACK_MARK}" in exc.message:
                raise EngineFallback(exc.message) from exc
            if f"Exception: {COMPOSITE_MARK}" in exc.message:
                raise _Composite(exc.message) from exc
            if exc.retryable:
                raise
            raise DecodeError(f"the engine decoder rejected the batch: {exc.message}") from exc
