"""The official OTLP exporters behind one ``--protocol`` switch, and a batcher that never drops.

``grpc`` → ``opentelemetry.exporter.otlp.proto.grpc``, ``http/protobuf`` →
``opentelemetry.exporter.otlp.proto.http``, ``http/json`` → ``opentelemetry.exporter.otlp.json.http``
(package ``opentelemetry-exporter-otlp-json-http``; docs/decisions/0009-official-sdk-exporters.md pins the set).

:class:`BlockingBatcher` is the SDK's ``BatchSpanProcessor`` idea (one queue, one worker, large
batches) with one difference that backfill needs: when the queue is full, producers *wait* instead
of dropping. The exporters already retry 429/503 (honouring ``Retry-After``) and UNAVAILABLE; when
an export still fails, the batch is retried with backoff for ``retry_for`` seconds before it is
counted as dropped, so a daemon that sheds load slows the generator down instead of losing data.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator

from otel_ai.errors import ConfigError

Protocol = Literal["grpc", "http/protobuf", "http/json"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf", "http/json")


def default_endpoint(protocol: Protocol) -> str:
    return "http://127.0.0.1:4317" if protocol == "grpc" else "http://127.0.0.1:4318"


def _check(protocol: str) -> Protocol:
    if protocol not in PROTOCOLS:
        raise ConfigError("protocol", f"expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol  # type: ignore[return-value]


def unreachable(endpoint: str, timeout: float = 3.0) -> str | None:
    """Why a TCP connection to ``endpoint`` fails (e.g. ``connection refused``), or ``None``.

    A check before the first export: the SDK exporters retry an unreachable endpoint for as
    long as their timeout, once per batch, so without it a typo in the port costs minutes.
    """
    parsed = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    host = parsed.hostname or "127.0.0.1"
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return f"bad port in {endpoint!r}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def _grpc_target(endpoint: str) -> tuple[str, bool]:
    insecure = not endpoint.startswith("https://")
    return endpoint.split("://", 1)[-1].rstrip("/"), insecure


def span_exporter(protocol: str, endpoint: str, timeout: float = 10.0) -> SpanExporter:
    p = _check(protocol)
    if p == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        target, insecure = _grpc_target(endpoint)
        return Grpc(endpoint=target, insecure=insecure, timeout=timeout)
    url = endpoint.rstrip("/") + "/v1/traces"
    if p == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        return Http(endpoint=url, timeout=timeout)
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as Json

    return Json(endpoint=url, timeout=timeout)


def log_exporter(protocol: str, endpoint: str, timeout: float = 10.0) -> LogRecordExporter:
    p = _check(protocol)
    if p == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as Grpc

        target, insecure = _grpc_target(endpoint)
        return Grpc(endpoint=target, insecure=insecure, timeout=timeout)
    url = endpoint.rstrip("/") + "/v1/logs"
    if p == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as Http

        return Http(endpoint=url, timeout=timeout)
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as Json

    return Json(endpoint=url, timeout=timeout)


def metric_exporter(protocol: str, endpoint: str, timeout: float = 10.0) -> MetricExporter:
    p = _check(protocol)
    if p == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        target, insecure = _grpc_target(endpoint)
        return Grpc(endpoint=target, insecure=insecure, timeout=timeout)
    url = endpoint.rstrip("/") + "/v1/metrics"
    if p == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

        return Http(endpoint=url, timeout=timeout)
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter as Json

    return Json(endpoint=url, timeout=timeout)


def http_endpoint(endpoint: str, protocol: Protocol) -> str:
    """The daemon's OTLP/HTTP endpoint next to ``endpoint``: itself for the HTTP protocols; for
    gRPC the same host on the default HTTP port (4318)."""
    if protocol != "grpc":
        return endpoint
    parsed = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    scheme = "https" if parsed.scheme == "https" else "http"
    return f"{scheme}://{parsed.hostname or '127.0.0.1'}:4318"


class SplitSpanExporter(SpanExporter):
    """Spans of the instances in ``odd`` (``service.instance.id``) go out through ``other``, the
    rest through ``main``: one service whose instances export different OTLP encodings, as after
    a half-rolled-out exporter setting. ``odd`` is read at export time (instances appear lazily).
    A failed part fails the batch, which the batcher sends again (a duplicate, which OTLP allows)."""

    def __init__(self, main: SpanExporter, other: SpanExporter, odd: set[str]) -> None:
        self.main, self.other, self.odd = main, other, odd

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        parts: tuple[list[ReadableSpan], list[ReadableSpan]] = ([], [])
        for span in spans:
            res = span.resource.attributes if span.resource is not None else {}
            parts[res.get("service.instance.id") in self.odd].append(span)
        ok = True
        for exporter, part in zip((self.main, self.other), parts, strict=True):
            if part:
                ok = exporter.export(part) == SpanExportResult.SUCCESS and ok
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.main.shutdown()
        self.other.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.main.force_flush(timeout_millis) and self.other.force_flush(timeout_millis)


class BlockingBatcher:
    """A bounded queue drained by one worker thread in batches of ``max_batch`` items."""

    def __init__(
        self,
        export: Callable[[list[Any]], bool],
        shutdown_exporter: Callable[[], None],
        *,
        max_batch: int = 4096,
        max_queue: int = 65536,
        delay_s: float = 1.0,
        retry_for: float = 120.0,
        name: str = "demo-export",
    ) -> None:
        self._export = export
        self._shutdown_exporter = shutdown_exporter
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._delay = delay_s
        self._retry_for = retry_for
        self._q: deque[Any] = deque()
        self._cond = threading.Condition()
        self._flush_req = 0
        self._flush_done = 0
        self._closed = False
        self._abort = threading.Event()
        self.exported = 0
        self.dropped = 0
        self.failed_attempts = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        with self._cond:
            while len(self._q) >= self._max_queue and not self._closed:
                self._cond.notify_all()
                self._cond.wait(0.5)  # back-pressure: the producer waits, nothing is dropped
            if self._closed:
                self.dropped += 1
                return
            self._q.append(item)
            if len(self._q) >= self._max_batch:
                self._cond.notify_all()

    def _take(self) -> tuple[list[Any], int]:
        with self._cond:
            deadline = time.monotonic() + self._delay
            while (
                len(self._q) < self._max_batch
                and not self._closed
                and self._flush_req == self._flush_done
                and (left := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(left)
            n = min(len(self._q), self._max_batch)
            batch = [self._q.popleft() for _ in range(n)]
            flush_mark = self._flush_req if not self._q else -1
            self._cond.notify_all()
            return batch, flush_mark

    def _send(self, batch: list[Any]) -> None:
        give_up = time.monotonic() + self._retry_for
        backoff = 0.5
        while True:
            try:
                ok = self._export(batch)
            except Exception:  # an exporter bug must not kill the worker
                ok = False
            if ok:
                self.exported += len(batch)
                return
            self.failed_attempts += 1
            if self._abort.is_set() or time.monotonic() + backoff > give_up:
                self.dropped += len(batch)
                return
            if self._abort.wait(backoff * (0.5 + random.random())):
                self.dropped += len(batch)
                return
            backoff = min(backoff * 2, 10.0)

    def _run(self) -> None:
        while True:
            batch, flush_mark = self._take()
            if batch:
                self._send(batch)
            with self._cond:
                if flush_mark >= 0:
                    self._flush_done = max(self._flush_done, flush_mark)
                    self._cond.notify_all()
                if self._closed and not self._q:
                    self._flush_done = self._flush_req
                    self._cond.notify_all()
                    return

    def flush(self, timeout: float = 60.0) -> bool:
        with self._cond:
            self._flush_req += 1
            mark = self._flush_req
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self._flush_done >= mark or not self._thread.is_alive(), timeout
            )

    def shutdown(self, timeout: float = 60.0) -> None:
        """Send what is queued within ``timeout`` s; past it, give up and count the rest as dropped."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort.set()  # the batch in flight is counted as dropped when its attempt returns
            with self._cond:
                self.dropped += len(self._q)
                self._q.clear()
                self._cond.notify_all()
        self._shutdown_exporter()

    @property
    def queued(self) -> int:
        return len(self._q)


class BlockingSpanProcessor(SpanProcessor):
    """``SpanProcessor`` adapter; one instance is shared by every simulated service's provider."""

    def __init__(self, exporter: SpanExporter, **kw: Any) -> None:
        def export(batch: list[ReadableSpan]) -> bool:
            return exporter.export(batch) == SpanExportResult.SUCCESS

        self.batcher = BlockingBatcher(export, exporter.shutdown, name="demo-spans", **kw)

    def on_end(self, span: ReadableSpan) -> None:
        self.batcher.put(span)

    def shutdown(self, timeout_s: float = 60.0) -> None:
        self.batcher.shutdown(timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.batcher.flush(timeout_millis / 1000)


class BlockingLogProcessor(LogRecordProcessor):
    def __init__(self, exporter: LogRecordExporter, **kw: Any) -> None:
        def export(batch: Sequence[ReadableLogRecord]) -> bool:
            return exporter.export(list(batch)) == LogRecordExportResult.SUCCESS

        self.batcher = BlockingBatcher(export, exporter.shutdown, name="demo-logs", **kw)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        # As the SDK's BatchLogRecordProcessor does: export a ReadableLogRecord.
        assert log_record.resource is not None
        self.batcher.put(
            ReadableLogRecord(
                log_record=log_record.log_record,
                resource=log_record.resource,
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )

    def shutdown(self, timeout_s: float = 60.0) -> None:
        self.batcher.shutdown(timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.batcher.flush(timeout_millis / 1000)


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from a seeded PRNG, so ``--seed`` reproduces the same ids."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed ^ 0x5EED1D5)

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1
