"""The one export path per signal that both transports call: validate → pipeline.submit → response.

The error classification lives here, once (docs/decisions/0005-otlp-status-table.md): each
outcome has a gRPC code and an HTTP status, and the transports only translate.

| outcome       | when                                         | HTTP | gRPC                      |
|---------------|----------------------------------------------|------|---------------------------|
| ok / partial  | inserted or spooled (partial: some rejected) | 200  | OK                        |
| invalid       | undecodable body, bad gzip, engine refusal   | 400  | INVALID_ARGUMENT          |
| not_found     | unknown path                                 | 404  | (UNIMPLEMENTED, by grpc)  |
| bad_method    | not POST                                     | 405  | —                         |
| too_large     | body over ingest.max_body_bytes              | 413  | RESOURCE_EXHAUSTED (grpc) |
| unsupported   | Content-Type / Content-Encoding not accepted | 415  | —                         |
| overloaded    | queue full, spool full, shutting down        | 503 + Retry-After | UNAVAILABLE + RetryInfo |
| error         | a bug; storage refused the content for good  | 500  | INTERNAL                  |
| unauthenticated | ingest.token set, no or another bearer token | 401  | UNAUTHENTICATED           |
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from otel_ai.errors import DecodeError, OverloadedError, PayloadTooLarge, StorageError, UnsupportedMediaType
from otel_ai.ingest import status as st
from otel_ai.ingest.config import IngestConfig
from otel_ai.model import Encoding, Payload, Signal, Transport
from otel_ai.otlp.limits import Limits
from otel_ai.otlp.validate import validate, validate_json_traces_fast
from otel_ai.pipeline import Pipeline

log = logging.getLogger(__name__)

# Bodies at least this large are validated off the event loop, so one huge request does not
# stall every other connection; small ones are cheaper to parse inline than to hand over.
INLINE_VALIDATE_BYTES = 1 << 20
# OTLP/JSON outside the C transcoder (logs, metrics, unusual traces) is parsed by protobuf's
# json_format at ~1 ms per item: from this size it goes off the loop too.
INLINE_VALIDATE_JSON_BYTES = 16 << 10

HTTP_STATUS = {
    "ok": 200, "partial": 200, "invalid": 400, "not_found": 404, "bad_method": 405,
    "too_large": 413, "unsupported": 415, "overloaded": 503, "error": 500, "unauthenticated": 401,
}  # fmt: skip
GRPC_CODE = {
    "ok": st.OK, "partial": st.OK, "invalid": st.INVALID_ARGUMENT, "not_found": st.UNIMPLEMENTED,
    "bad_method": st.UNIMPLEMENTED, "too_large": st.RESOURCE_EXHAUSTED, "unsupported": st.INVALID_ARGUMENT,
    "overloaded": st.UNAVAILABLE, "error": st.INTERNAL, "unauthenticated": st.UNAUTHENTICATED,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What a transport sends back. ``body`` is already in the request's encoding."""

    outcome: str
    body: bytes
    message: str = ""
    retry_after_s: int | None = None

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.outcome]

    @property
    def grpc_code(self) -> int:
        return GRPC_CODE[self.outcome]


class _Counts:
    """Per (signal, transport, encoding) counters for ``/api/v1/status`` (cheap ints, loop thread)."""

    __slots__ = (
        "items_accepted",
        "items_received",
        "items_refused",
        "items_rejected",
        "outcomes",
        "requests",
    )

    def __init__(self) -> None:
        self.requests = self.items_received = self.items_accepted = self.items_refused = (
            self.items_rejected
        ) = 0
        self.outcomes: dict[str, int] = {}


class Exporter:
    """validate → submit → response, with the receiver metrics. Shared by HTTP and gRPC."""

    def __init__(
        self,
        pipeline: Pipeline,
        ingest_cfg: IngestConfig,
        *,
        registry: CollectorRegistry,
        retention_days: int = 0,
    ) -> None:
        self.pipeline = pipeline
        self.ingest_cfg = ingest_cfg
        self.retention_days = int(retention_days)  # storage.ttl_days: older rows are refused
        self.retry_after_s = int(ingest_cfg.retry_after_s)
        self.max_body_bytes = int(ingest_cfg.max_body_bytes)
        self.counts: dict[tuple[str, str, str], _Counts] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="otlp-validate")
        self._in_flight = 0  # exports being handled now (event loop thread only)
        self.m_requests = Counter(
            "otel_ai_receiver_requests",
            "OTLP export requests by outcome",
            ["signal", "transport", "encoding", "outcome"],
            registry=registry,
        )
        self.m_items = Counter(
            "otel_ai_receiver_items",
            "Items (spans, data points, log records): received, accepted (inserted or spooled), refused (retryable failure), rejected (invalid)",
            ["signal", "transport", "encoding", "outcome"],
            registry=registry,
        )
        self.m_rejected = Counter(
            "otel_ai_receiver_rejected_items",
            "Items refused before the acknowledgement (partial_success or a refused request), by reason",
            ["signal", "reason"],
            registry=registry,
        )
        self.m_refused_requests = Counter(
            "otel_ai_receiver_rejected_requests",
            "Export requests refused whole with 400 / INVALID_ARGUMENT, by reason",
            ["signal", "reason"],
            registry=registry,
        )
        self.m_latency = Histogram(
            "otel_ai_export_latency_seconds", "OTLP export request latency, receipt of body to response",
            ["signal", "transport"], registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip

    def authorized(self, header: bytes | str | None) -> bool:
        """Whether an ``Authorization`` value carries ``ingest.token`` (always, without a token)."""
        token = self.ingest_cfg.token
        if not token:
            return True
        raw = header.encode("latin-1") if isinstance(header, str) else (header or b"")
        scheme, _, given = raw.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token.encode())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def export(
        self, signal: Signal, encoding: Encoding, transport: Transport, body: bytes
    ) -> ExportResult:
        """Validate ``body`` (decompressed), queue it, and answer once it is stored or spooled."""
        self._in_flight += 1
        try:
            return await self._export(signal, encoding, transport, body)
        finally:
            self._in_flight -= 1

    async def _export(
        self, signal: Signal, encoding: Encoding, transport: Transport, body: bytes
    ) -> ExportResult:
        t0 = time.perf_counter()
        c = self._counts(signal, transport, encoding)
        c.requests += 1
        limits = Limits.now(self.ingest_cfg, self.retention_days)
        try:
            fast = None
            if (
                signal == "traces"
                and encoding == "json"
                and self._in_flight == 1
                and len(body) < INLINE_VALIDATE_BYTES
            ):
                # Alone, the C transcoder runs inline, like protobuf: handing ~2 ms of work to a
                # thread cost more than the work (5.7 vs 14.8 ms per 512-span request). With
                # other exports in flight the pool's two threads transcode in parallel with the
                # loop (the C code releases the GIL), as before.
                fast = validate_json_traces_fast(transport, body, limits)
            if fast is not None:
                payload: Payload = fast
            elif len(body) >= (INLINE_VALIDATE_JSON_BYTES if encoding == "json" else INLINE_VALIDATE_BYTES):
                payload = await asyncio.get_running_loop().run_in_executor(
                    self._pool, validate, signal, encoding, transport, body, limits
                )
            else:
                payload = validate(signal, encoding, transport, body, limits)
        except DecodeError as exc:
            self.m_refused_requests.labels(signal, exc.reason).inc()
            return self._finish(
                self.fail(signal, transport, encoding, exc, counted=True), signal, transport, t0
            )
        received = payload.items + payload.rejected
        c.items_received += received
        self._item(signal, transport, encoding, "received", received)
        if payload.rejected:
            c.items_rejected += payload.rejected
            self._item(signal, transport, encoding, "rejected", payload.rejected)
            for reason, n in payload.reasons:
                self.m_rejected.labels(signal, reason).inc(n)
        if payload.items:
            try:
                await self.pipeline.submit(payload)
            except (DecodeError, OverloadedError, StorageError) as exc:
                if isinstance(exc, DecodeError | StorageError) and not exc.retryable:
                    c.items_rejected += payload.items
                    self._item(signal, transport, encoding, "rejected", payload.items)
                else:
                    c.items_refused += payload.items
                    self._item(signal, transport, encoding, "refused", payload.items)
                return self._finish(
                    self.fail(signal, transport, encoding, exc, counted=True), signal, transport, t0
                )
            except Exception as exc:
                log.exception("export failed")
                c.items_refused += payload.items
                self._item(signal, transport, encoding, "refused", payload.items)
                return self._finish(
                    self._result(signal, transport, encoding, "error", f"internal error: {exc!r}"),
                    signal,
                    transport,
                    t0,
                )
            c.items_accepted += payload.items
            self._item(signal, transport, encoding, "accepted", payload.items)
        outcome = "partial" if payload.rejected or payload.error_message else "ok"
        body_out = st.success_body(signal, encoding, payload.rejected, payload.error_message)
        return self._finish(
            self._result(signal, transport, encoding, outcome, payload.error_message, body=body_out),
            signal,
            transport,
            t0,
        )

    def fail(
        self,
        signal: str,
        transport: str,
        encoding: st.CountedEncoding,
        exc: Exception,
        *,
        counted: bool = False,
    ) -> ExportResult:
        """The response for an error raised before or during export (classified here, once)."""
        if not counted:
            self._counts(signal, transport, encoding).requests += 1
        if isinstance(exc, PayloadTooLarge):
            outcome = "too_large"
        elif isinstance(exc, UnsupportedMediaType):
            outcome = "unsupported"
        elif isinstance(exc, DecodeError):
            outcome = "invalid"
        elif isinstance(exc, OverloadedError) or (isinstance(exc, StorageError) and exc.retryable):
            outcome = "overloaded"
        else:
            outcome = "error"
        return self._result(signal, transport, encoding, outcome, getattr(exc, "message", str(exc)))

    def rejected_request(
        self, signal: str, transport: str, encoding: st.CountedEncoding, outcome: str, message: str
    ) -> ExportResult:
        """Count and build a response for an HTTP-level refusal (404, 405)."""
        self._counts(signal, transport, encoding).requests += 1
        return self._result(signal, transport, encoding, outcome, message)

    def _result(
        self,
        signal: str,
        transport: str,
        encoding: st.CountedEncoding,
        outcome: str,
        message: str,
        *,
        body: bytes | None = None,
    ) -> ExportResult:
        c = self._counts(signal, transport, encoding)
        c.outcomes[outcome] = c.outcomes.get(outcome, 0) + 1
        self.m_requests.labels(signal, transport, encoding, outcome).inc()
        if body is not None:
            return ExportResult(outcome, body, message)
        retry = self.retry_after_s if outcome == "overloaded" else None
        code = GRPC_CODE[outcome]
        body_enc = st.reply_encoding(encoding)  # "unknown" (unsupported Content-Type) answers protobuf
        return ExportResult(outcome, st.error_body(body_enc, code, message, retry), message, retry)

    def _finish(self, result: ExportResult, signal: str, transport: str, t0: float) -> ExportResult:
        self.m_latency.labels(signal, transport).observe(time.perf_counter() - t0)
        return result

    def _item(self, signal: str, transport: str, encoding: str, outcome: str, n: int) -> None:
        self.m_items.labels(signal, transport, encoding, outcome).inc(n)

    def _counts(self, signal: str, transport: str, encoding: str) -> _Counts:
        key = (signal, transport, encoding)
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = _Counts()
        return c

    def status(self) -> dict[str, Any]:
        """Counters by signal, transport and encoding, for ``/api/v1/status``."""
        out: dict[str, Any] = {}
        # copy(): atomic under the GIL; this runs in API threads while the loop adds keys.
        for (signal, transport, encoding), c in sorted(self.counts.copy().items()):
            out.setdefault(signal, {}).setdefault(transport, {})[encoding] = {
                "requests": c.requests, "items_received": c.items_received, "items_accepted": c.items_accepted,
                "items_refused": c.items_refused, "items_rejected": c.items_rejected, "outcomes": dict(c.outcomes),
            }  # fmt: skip
        return out
