"""OTLP receivers: gRPC (``server.otlp_grpc``, default :4317) and HTTP (``server.otlp_http``, :4318).

Both adapt their transport and call the same :class:`~otel_ai.ingest.export.Exporter` per signal
(validate → ``pipeline.submit`` → response). Start binds both listeners (an occupied port is an
``OSError``); shutdown stops accepting, lets in-flight exports finish within ``grace_s`` and
leaves draining the pipeline to the daemon (which calls ``pipeline.shutdown`` next).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import CollectorRegistry

from otel_ai.daemon_config import ServerConfig
from otel_ai.ingest.config import IngestConfig
from otel_ai.ingest.export import Exporter
from otel_ai.ingest.grpc import OtlpGrpcServer
from otel_ai.ingest.http import OtlpHttpApp
from otel_ai.pipeline import Pipeline
from otel_ai.sections import split_host_port
from otel_ai.serving import EmbeddedServer, start_server, stop_server, tls_kwargs

log = logging.getLogger(__name__)


class Receivers:
    """The two OTLP listeners over one shared export path."""

    def __init__(
        self,
        server_cfg: ServerConfig,
        ingest_cfg: IngestConfig,
        pipeline: Pipeline,
        *,
        registry: CollectorRegistry,
        retention_days: int = 0,
    ) -> None:
        self.server_cfg = server_cfg
        self.ingest_cfg = ingest_cfg
        self.pipeline = pipeline
        pipeline.retry_after = float(ingest_cfg.retry_after_s)
        self.exporter = Exporter(pipeline, ingest_cfg, registry=registry, retention_days=retention_days)
        cert, key = ingest_cfg.tls_cert_file, ingest_cfg.tls_key_file
        tls = (cert, key) if cert and key else None
        self.grpc = OtlpGrpcServer(server_cfg.otlp_grpc, self.exporter, ingest_cfg.max_body_bytes, tls)
        self._http: EmbeddedServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.ready = False

    async def start(self) -> None:
        await self.grpc.start()
        host, port = split_host_port(self.server_cfg.otlp_http)
        app = OtlpHttpApp(self.exporter, self.ingest_cfg.max_body_bytes)
        try:
            self._http, self._http_task = await start_server(
                app,
                host,
                port,
                http="httptools",
                server_header=False,
                date_header=False,
                timeout_keep_alive=30,
                **tls_kwargs(self.ingest_cfg),
            )
        except BaseException:
            await self.grpc.shutdown(0)
            raise
        self.ready = True
        log.info(
            "OTLP receivers listening: grpc %s, http %s", self.server_cfg.otlp_grpc, self.server_cfg.otlp_http
        )

    async def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop accepting; in-flight exports get ``grace_s`` to finish (idempotent)."""
        if not self.ready and self._http is None:
            return
        self.ready = False
        grpc_stop = asyncio.create_task(self.grpc.shutdown(grace_s))
        if self._http is not None and self._http_task is not None:
            self._http.config.timeout_graceful_shutdown = max(1, int(grace_s))
            await stop_server(self._http, self._http_task, timeout_s=grace_s + 2)
        with contextlib.suppress(Exception):
            await grpc_stop
        self._http = self._http_task = None
        self.exporter.close()

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "endpoints": {"grpc": self.server_cfg.otlp_grpc, "http": self.server_cfg.otlp_http},
            "max_body_bytes": self.ingest_cfg.max_body_bytes,
            "counters": self.exporter.status(),
        }
