"""OTLP/gRPC receiver: grpc.aio server with generic handlers on raw bytes (no double parse).

The three ``Export`` methods pass the serialized request straight to the shared export path;
grpc itself handles gzip-compressed calls and enforces ``grpc.max_receive_message_length`` (=
``ingest.max_body_bytes``, answering RESOURCE_EXHAUSTED, spec §1.6). Throttling answers
UNAVAILABLE with a ``google.rpc.RetryInfo`` in the ``grpc-status-details-bin`` trailer (spec §1.5),
the same trailer grpcio-status writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from otel_ai.ingest.export import Exporter
from otel_ai.ingest.status import status_proto
from otel_ai.model import Signal

SERVICES: dict[str, Signal] = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
    "opentelemetry.proto.collector.logs.v1.LogsService": "logs",
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _handler(exporter: Exporter, signal: Signal) -> Any:
    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        if exporter.ingest_cfg.token:
            auth = dict(context.invocation_metadata() or ()).get("authorization")
            if not exporter.authorized(auth if isinstance(auth, str | bytes) else None):
                exporter.rejected_request(signal, "grpc", "protobuf", "unauthenticated", "")
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token (ingest.token)"
                )
        result = await exporter.export(signal, "protobuf", "grpc", request)
        if result.grpc_code == 0:
            return result.body
        if result.retry_after_s is not None:
            details = status_proto(result.grpc_code, result.message, result.retry_after_s).SerializeToString()
            context.set_trailing_metadata((("grpc-status-details-bin", details),))
        await context.abort(_CODES[result.grpc_code], result.message)
        raise AssertionError("unreachable")  # abort raises

    return grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: raw bytes in and out


class OtlpGrpcServer:
    """The gRPC listener; ``start`` binds (raising OSError if the port is taken)."""

    def __init__(
        self, address: str, exporter: Exporter, max_body_bytes: int, tls: tuple[str, str] | None = None
    ) -> None:
        self.address = address
        self.tls = tls  # (cert file, key file): TLS on the listener
        self.exporter = exporter
        self.max_body_bytes = max_body_bytes
        self.server: aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        options = [
            ("grpc.max_receive_message_length", self.max_body_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),  # responses are tiny (spec: limit 4 MiB)
            ("grpc.so_reuseport", 0),
        ]
        server = aio.server(options=options)
        for service, signal in SERVICES.items():
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": _handler(self.exporter, signal)}),)
            )
        try:
            if self.tls is not None:
                cert, key = (Path(p).read_bytes() for p in self.tls)
                creds = grpc.ssl_server_credentials([(key, cert)])
                port = server.add_secure_port(self.address, creds)
            else:
                port = server.add_insecure_port(self.address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for OTLP/gRPC on {self.address}: {exc}") from exc
        if not port:
            raise OSError(f"cannot listen for OTLP/gRPC on {self.address}")
        self.port = port
        await server.start()
        self.server = server

    async def shutdown(self, grace_s: float) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop(grace_s)
