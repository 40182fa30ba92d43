"""Batch writer of validated OTLP payloads into the contrib-compatible telemetry tables.

Three decoders (docs/decisions/0003-decode-path.md, ``pipeline.decoder``):

* ``native`` (default) — spans (protobuf, and OTLP/JSON transcoded in C) flattened in C into one
  ClickHouse ``Native`` block per batch (:mod:`otel_ai.storage.decoders.native`); what it does not
  cover (logs, metrics, content it declines) goes to ``engine`` on chDB and to ``python`` on a server.
* ``engine`` — ClickHouse decodes OTLP itself (``Protobuf`` input format with an OTLP schema, or
  typed ``JSONEachRow`` for OTLP/JSON) and flattens it in SQL; see :mod:`otel_ai.storage.decoders.engine`.
* ``python`` — upb parse + Python flatten + column-oriented insert; see
  :mod:`otel_ai.storage.decoders.python`. Portable fallback and benchmark baseline.

``write`` is blocking (called from pipeline worker threads) and raises
:class:`~otel_ai.errors.StorageError` (retryable when storage is unreachable) or
:class:`~otel_ai.errors.DecodeError` when the content cannot be decoded (the pipeline bisects).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry

from otel_ai.model import Payload
from otel_ai.storage.client import Storage
from otel_ai.storage.decoders import native
from otel_ai.storage.decoders.python import write_python

log = logging.getLogger(__name__)

DECODERS = ("native", "engine", "python")

# A scratch file older than this belongs to no running insert: a process killed mid-insert left it.
STALE_SCRATCH_S = 3600


def _scratch_dir(storage: Storage) -> str | None:
    """The engine's scratch dir (made if missing), cleared of what killed processes left in it."""
    path = getattr(storage, "scratch_dir", None)
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    cutoff, removed = time.time() - STALE_SCRATCH_S, 0
    for entry in path.glob("otel-ai-*"):
        try:
            if entry.stat().st_mtime >= cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    if removed:
        log.info("removed %d stale insert files from %s", removed, path)
    return str(path)


class TelemetryWriter:
    """Writes batches of payloads of one signal; thread-safe (the storage client is)."""

    def __init__(
        self, storage: Storage, *, decoder: str = "native", registry: CollectorRegistry | None = None
    ) -> None:
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.storage = storage
        self.registry = registry
        embedded = getattr(storage, "embedded", True)
        if decoder == "native" and not native.available():
            log.warning("the native decoder was not built (no C compiler at install time); using engine")
            decoder = "engine"
        if decoder == "engine" and not embedded:
            # A remote server would need our .proto in its format_schemas directory.
            log.warning("pipeline.decoder=engine needs embedded chDB storage; using the python decoder")
            decoder = "python"
        self.decoder = decoder
        self._latency, engine_fallbacks, native_fallbacks = _metrics(registry)
        # One chain of decoders, each handing what it declines to the next: native → engine
        # (chDB only) → python. Each counts its hand-overs.
        write: Any = partial(write_python, storage)
        self._engine: Any = None
        self._native: Any = None
        scratch = None  # where the engine reads insert files from (chDB only)
        if decoder != "python" and embedded:
            from otel_ai.storage.decoders.engine import EngineDecoder

            scratch = _scratch_dir(storage)
            self._engine = EngineDecoder(storage, fallback=write, tmp_dir=scratch)
            write = _Counted(self._engine, engine_fallbacks)
        if decoder == "native":
            self._native = native.NativeDecoder(storage, write, tmp_dir=scratch)
            write = _Counted(self._native, native_fallbacks)
        self._write = write

    def write(self, payloads: Sequence[Payload]) -> None:
        """Insert one batch (all the same signal; encodings/transports may be mixed)."""
        payloads = [p for p in payloads if p.items > 0]
        if not payloads:
            return
        signal = payloads[0].signal
        if any(p.signal != signal for p in payloads):
            raise ValueError("a batch must hold payloads of one signal")
        started = time.perf_counter()
        self._write(payloads)
        if self._latency is not None:
            self._latency.labels(signal=signal, decoder=self.decoder).observe(time.perf_counter() - started)


class _Counted:
    """A decoder whose hand-overs to the next one (``decoder.fallbacks``) feed a counter."""

    def __init__(self, decoder: Any, counter: Any) -> None:
        self.decoder = decoder
        self.counter = counter

    def __call__(self, payloads: Sequence[Payload]) -> None:
        before = self.decoder.fallbacks
        self.decoder.write(payloads)
        if self.counter is not None and self.decoder.fallbacks > before:
            self.counter.labels(signal=payloads[0].signal).inc(self.decoder.fallbacks - before)


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
