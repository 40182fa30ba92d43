"""Batch writer of validated OTLP payloads into the contrib-compatible telemetry tables.

Two decoders (DESIGN.md decision 3, ``pipeline.decoder``):

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
from typing import Any

from otel_ai.errors import DecodeError, StorageError
from otel_ai.model import Payload
from otel_ai.storage import decode_python

log = logging.getLogger(__name__)

DECODERS = ("engine", "python")


class TelemetryWriter:
    """Writes batches of payloads of one signal; thread-safe (the storage client is)."""

    def __init__(self, storage: Any, *, decoder: str = "engine", registry: Any = None) -> None:
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.storage = storage
        self.decoder = decoder
        self.registry = registry
        self._engine: Any = None
        if decoder == "engine" and not getattr(storage, "embedded", True):
            # A remote server would need our .proto in its format_schemas directory.
            log.warning("pipeline.decoder=engine needs embedded chDB storage; using the python decoder")
            self.decoder = decoder = "python"
        if decoder == "engine":
            from otel_ai.storage.decode_engine import EngineDecoder

            self._engine = EngineDecoder(storage)
        self._latency, self._fallbacks = _metrics(registry)

    def write(self, payloads: Sequence[Payload]) -> None:
        """Insert one batch (all the same signal; encodings/transports may be mixed)."""
        payloads = [p for p in payloads if p.items > 0]
        if not payloads:
            return
        signal = payloads[0].signal
        if any(p.signal != signal for p in payloads):
            raise ValueError("a batch must hold payloads of one signal")
        started = time.perf_counter()
        if self._engine is not None:
            before = self._engine.fallbacks
            self._engine.write(payloads)
            if self._fallbacks is not None and self._engine.fallbacks > before:
                self._fallbacks.labels(signal=signal).inc(self._engine.fallbacks - before)
        else:
            write_python(self.storage, payloads)
        if self._latency is not None:
            self._latency.labels(signal=signal, decoder=self.decoder).observe(time.perf_counter() - started)


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


def _metrics(registry: Any) -> tuple[Any, Any]:
    """Insert latency histogram and engine→python fallback counter (None without a registry)."""
    if registry is None:
        return None, None
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
    except ValueError:  # already registered on this registry (several writers)
        return None, None
    return latency, fallbacks
