"""Batch writer of validated OTLP payloads into the contrib-compatible telemetry tables.

Three decoders (DESIGN.md decision 3, ``pipeline.decoder``):

* ``native`` (default) — protobuf spans flattened in C into one ClickHouse ``Native`` block per
  batch (:mod:`otel_ai.storage.decode_native`); what it does not cover (logs, metrics, OTLP/JSON,
  array/kvlist attribute values) goes to ``engine`` on chDB and to ``python`` on a server.
* ``engine`` — ClickHouse decodes OTLP itself (``Protobuf`` input format with an OTLP schema, or
  typed ``JSONEachRow`` for OTLP/JSON) and flattens it in SQL; see :mod:`otel_ai.storage.decode_engine`.
* ``python`` — upb parse + Python flatten + column-oriented insert; see
  :mod:`otel_ai.storage.decode_python`. Portable fallback and benchmark baseline.

``write`` is blocking (called from pipeline worker threads) and raises
:class:`~otel_ai.errors.StorageError` (retryable when storage is unreachable) or
:class:`~otel_ai.errors.DecodeError` when the content cannot be decoded (the pipeline bisects).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload
from otel_ai.storage import decode_native, decode_python

log = logging.getLogger(__name__)

DECODERS = ("native", "engine", "python")


class TelemetryWriter:
    """Writes batches of payloads of one signal; thread-safe (the storage client is)."""

    def __init__(self, storage: Any, *, decoder: str = "native", registry: Any = None) -> None:
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.storage = storage
        self.registry = registry
        self._engine: Any = None
        self._native: Any = None
        if decoder == "native" and not decode_native.available():
            log.warning("the native decoder was not built (no C compiler at install time); using engine")
            decoder = "engine"
        self.decoder = decoder
        embedded = getattr(storage, "embedded", True)
        if decoder == "native":
            from otel_ai.storage.decode_native import NativeDecoder

            if embedded:
                from otel_ai.storage.decode_engine import EngineDecoder

                self._engine = EngineDecoder(storage)
            fallback = self._write_engine if embedded else partial(write_python, storage)
            self._native = NativeDecoder(storage, fallback)
        elif decoder == "engine" and not embedded:
            # A remote server would need our .proto in its format_schemas directory.
            log.warning("pipeline.decoder=engine needs embedded chDB storage; using the python decoder")
            self.decoder = decoder = "python"
        if decoder == "engine":
            from otel_ai.storage.decode_engine import EngineDecoder

            self._engine = EngineDecoder(storage)
        self._latency, self._fallbacks, self._native_fallbacks = _metrics(registry)

    def write(self, payloads: Sequence[Payload]) -> None:
        """Insert one batch (all the same signal; encodings/transports may be mixed)."""
        payloads = [p for p in payloads if p.items > 0]
        if not payloads:
            return
        signal = payloads[0].signal
        if any(p.signal != signal for p in payloads):
            raise ValueError("a batch must hold payloads of one signal")
        started = time.perf_counter()
        if self._native is not None:
            before = self._native.fallbacks
            self._native.write(payloads)
            if self._native_fallbacks is not None and self._native.fallbacks > before:
                self._native_fallbacks.labels(signal=signal).inc(self._native.fallbacks - before)
        elif self._engine is not None:
            self._write_engine(payloads)
        else:
            write_python(self.storage, payloads)
        if self._latency is not None:
            self._latency.labels(signal=signal, decoder=self.decoder).observe(time.perf_counter() - started)

    def _write_engine(self, payloads: Sequence[Payload]) -> None:
        before = self._engine.fallbacks
        self._engine.write(payloads)
        if self._fallbacks is not None and self._engine.fallbacks > before:
            self._fallbacks.labels(signal=payloads[0].signal).inc(self._engine.fallbacks - before)


def write_python(storage: Any, payloads: Sequence[Payload]) -> None:
    """The python decoder: flatten every payload and insert each table column-oriented."""
    tables = decode_python.flatten(payloads)
    for table, rows in tables.items():
        if not rows:
            continue
        columns = [list(col) for col in zip(*rows, strict=True)]
        try:
            storage.insert(table, columns, decode_python.columns_of(table), column_oriented=True)
        except StorageError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # a value the driver cannot encode
            raise DecodeError(f"cannot encode rows for {table}: {exc}") from exc


def _metrics(registry: Any) -> tuple[Any, Any, Any]:
    """Insert latency histogram, engine→python and native→engine/python fallback counters."""
    if registry is None:
        return None, None, None
    from prometheus_client import Counter, Histogram

    try:
        latency = Histogram(
            "otel_ai_writer_insert_seconds",
            "Time to decode and insert one batch, by signal and decoder",
            ["signal", "decoder"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        fallbacks = Counter(
            "otel_ai_writer_engine_fallbacks",
            "Batches the engine decoder handed to the python decoder (values SQL cannot render exactly)",
            ["signal"],
            registry=registry,
        )
        native = Counter(
            "otel_ai_writer_native_fallbacks",
            "Span batches the native decoder handed to the engine/python decoder (content it does not render)",
            ["signal"],
            registry=registry,
        )
    except ValueError:  # already registered on this registry (several writers)
        return None, None, None
    return latency, fallbacks, native
