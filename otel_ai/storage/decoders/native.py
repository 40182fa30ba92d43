"""The "native" decoder: OTLP spans flattened in C into one ClickHouse ``Native`` block.

``otel_ai/native/_native.c`` walks the protobuf wire format
once (OTLP/JSON bodies are first transcoded to protobuf, in C) and writes every span as a row of
``otel_traces`` straight into column buffers, with the
exact encodings of the python decoder (:mod:`.python`, the contrib exporter's values). The
block is inserted with ``INSERT … FORMAT Native``: ClickHouse only converts and writes columns —
no protobuf parsing, no flatten SQL, no per-insert query analysis — and the same bytes suit an
embedded chDB and a remote server (``http://``) alike.

What it does not handle goes to the fallback decoder (engine on chDB, python on a server), whole
batch at a time: logs and metrics, and span batches the C code declines (``Unsupported``;
counted) — a time past 2^63 ns, or JSON outside the common ground of the decoders (snake_case or
duplicate keys, an unknown enum name, a fraction in an integer...; see ``_native.c``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_ai.errors import DecodeError
from otel_ai.model import Payload
from otel_ai.storage.quoting import quote
from otel_ai.storage.schema import TRACE_COLUMNS

try:
    from otel_ai.native import _native
except ImportError:  # pragma: no cover - built by `pip install`; absent only without a C compiler
    _native = None  # type: ignore[assignment]


def available() -> bool:
    """Whether the compiled module was built (``pip install`` compiles it with the system's cc)."""
    return _native is not None


def _flatten(payloads: Sequence[Payload], fd: int = -1) -> tuple[bytes | int, int]:
    if _native is None:  # pragma: no cover
        raise RuntimeError("the native decoder is not built (no C compiler at install time)")
    try:
        return _native.traces([(p.body, p.encoding, p.transport, p.body_encoding) for p in payloads], fd)
    except ValueError as exc:
        # What upb reads (validation accepted it) but this reader does not — e.g. a group in an
        # unknown field — goes to the next decoder, not back to the sender as undecodable.
        if all(_upb_reads(p) for p in payloads):
            raise UNSUPPORTED(f"{exc}; upb reads it: handed to the next decoder") from exc
        raise DecodeError(str(exc)) from exc


def _upb_reads(p: Payload) -> bool:
    if p.body_encoding != "protobuf":
        return False
    try:
        ExportTraceServiceRequest.FromString(p.body)
    except Exception:
        return False
    return True


def traces_block(payloads: Sequence[Payload]) -> tuple[bytes, int]:
    """The Native block of ``otel_traces`` rows for trace payloads (either encoding), and its row count.

    Raises ``Unsupported`` (see :data:`UNSUPPORTED`) for content the C code declines and
    :class:`DecodeError` for a body that is not a valid request.
    """
    block, rows = _flatten(payloads)
    assert isinstance(block, bytes)
    return block, rows


def traces_file(payloads: Sequence[Payload], fh: Any) -> int:
    """Write the Native block of ``payloads`` to the open binary file ``fh``; return its rows.

    The block goes from the C column buffers to the file with ``writev`` (no block-sized copy in
    memory). Raises like :func:`traces_block`.
    """
    fh.flush()
    return _flatten(payloads, fh.fileno())[1]


UNSUPPORTED: type[Exception] = _native.Unsupported if _native is not None else RuntimeError


class NativeDecoder:
    """Writes span batches as Native blocks; hands everything else to ``fallback``."""

    def __init__(
        self, storage: Any, fallback: Callable[[Sequence[Payload]], None], *, tmp_dir: str | None = None
    ) -> None:
        self.storage = storage
        self.tmp_dir = tmp_dir
        self.fallback = fallback
        self.fallbacks = 0  # batches (or one encoding's part of one) the C code declined
        self.native_batches = 0

    def write(self, payloads: Sequence[Payload]) -> None:
        if payloads and payloads[0].signal != "traces":
            self.fallback(payloads)
            return
        try:
            rows = self._insert(payloads)
        except UNSUPPORTED:
            # Try each encoding on its own before handing over: a JSON oddity should not send
            # the protobuf half of a mixed batch down the slow path.
            groups = [[p for p in payloads if p.body_encoding == e] for e in ("protobuf", "json")]
            groups = [g for g in groups if g]
            if len(groups) == 1:
                self.fallbacks += 1
                self.fallback(payloads)
                return
            for group in groups:
                self.write(group)
            return
        self.native_batches += 1 if rows else 0

    def _insert(self, payloads: Sequence[Payload]) -> int:
        if not getattr(self.storage, "embedded", False):
            block, rows = traces_block(payloads)
            if rows:
                self.storage.raw_insert(
                    "otel_traces",
                    block,
                    "Native",
                    column_names=TRACE_COLUMNS,
                    settings=self.storage.insert_settings,
                )
            return rows
        # Embedded: the C code writes the block into a file the engine reads with FROM INFILE —
        # no block-sized bytes object in this process (the driver's raw_insert would add one).
        with tempfile.NamedTemporaryFile(prefix="otel-ai-native-", suffix=".native", dir=self.tmp_dir) as fh:
            rows = traces_file(payloads, fh)
            if rows:
                self.storage.command(
                    f"INSERT INTO `{self.storage.database}`.`otel_traces` ({_COLUMNS}) "
                    f"FROM INFILE {quote(fh.name)}{self.storage.insert_settings_clause()} FORMAT Native"
                )
            return rows


_COLUMNS = ", ".join(f"`{c}`" for c in TRACE_COLUMNS)
