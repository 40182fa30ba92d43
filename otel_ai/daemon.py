"""The daemon: builds the components, starts them in order and stops them in reverse.

Start order: storage (migrations) → pipeline (spool replay) → receivers → analyzers + scheduler
→ LLM manager → API. Shutdown runs the reverse: receivers stop accepting first, the pipeline
drains what was accepted (into storage, or the durable spool if storage is down), then the
rest. Every ``shutdown`` is idempotent and bounded by ``server.shutdown_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from otel_ai.analysis.anomaly.service import build_anomaly_service
from otel_ai.analysis.topology.service import build_topology_service
from otel_ai.api import AppContext, create_app
from otel_ai.config import Config
from otel_ai.ingest import Receivers
from otel_ai.instance import Claim, claim_instance
from otel_ai.llm.service import build_llm_manager
from otel_ai.pipeline import Pipeline
from otel_ai.pipeline.memory import MemoryGuard
from otel_ai.serving import EmbeddedServer, start_server, stop_server, tls_kwargs
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter

log = logging.getLogger(__name__)


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class Daemon:
    def __init__(self, config: Config, *, claims: list[Claim] | None = None) -> None:
        self.config = config
        self._claims: list[Claim] = list(claims or [])  # the store and spool locks (otel_ai.instance)
        self.registry = CollectorRegistry()
        self.storage = Storage(
            config.storage.dsn,
            config.storage.database,
            cluster=config.storage.cluster,
            ttl_days=config.storage.ttl_days,
            replication_path=config.storage.replication_path,
            connect_timeout_s=config.storage.connect_timeout_s,
            query_timeout_s=config.storage.query_timeout_s,
            merge_tree_settings=config.storage.merge_tree_settings,
            defer_attribute_indexes=config.storage.defer_attribute_indexes,
        )
        self.ctx = AppContext(config=config, storage=self.storage, registry=self.registry)
        self.memory = MemoryGuard(config.memory, self.storage.release_memory, registry=self.registry)
        self.ctx.memory = self.memory
        self.pipeline: Pipeline | None = None
        self.receivers: Receivers | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.analyzers: list[Any] = []
        self._api_server: EmbeddedServer | None = None
        self._api_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------------
    def claim(self) -> None:
        """Lock the embedded store and the spool (raise ``InstanceLocked`` if another daemon has them)."""
        if not self._claims:
            self._claims = claim_instance(self.config)

    async def start(self) -> None:
        cfg = self.config
        runs_ingest = cfg.server.role in ("all", "ingest") and cfg.server.receivers_enabled
        runs_analyzers = cfg.server.role in ("all", "analyzer")
        self.claim()
        await asyncio.to_thread(self.storage.start)
        self.memory.start()

        if runs_ingest:
            writer = TelemetryWriter(self.storage, decoder=cfg.pipeline.decoder, registry=self.registry)
            self.pipeline = Pipeline(cfg.pipeline, writer, registry=self.registry, memory=self.memory)
            await self.pipeline.start()
            self.receivers = Receivers(
                cfg.server, cfg.ingest, self.pipeline, registry=self.registry,
                retention_days=cfg.storage.ttl_days,
            )  # fmt: skip
            await self.receivers.start()
            self.ctx.pipeline, self.ctx.receivers = self.pipeline, self.receivers

        self.ctx.llm = await asyncio.to_thread(build_llm_manager, cfg.llm, self.storage, self.registry)
        self.ctx.topology = build_topology_service(self.storage, cfg.topology, self.registry)
        self.ctx.anomaly = build_anomaly_service(
            self.storage, cfg.anomaly, self.registry, topology=self.ctx.topology
        )
        self.analyzers = [a for a in (self.ctx.topology, self.ctx.anomaly) if a is not None]
        await asyncio.to_thread(self._start_analyzers)
        if runs_analyzers and cfg.scheduler.enabled:
            self.scheduler = BackgroundScheduler(
                timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
            )
            for analyzer in self.analyzers:
                analyzer.register_jobs(self.scheduler)
            self.scheduler.start()
            self.ctx.scheduler = self.scheduler

        host, port = _hostport(cfg.server.api)
        self._api_server, self._api_task = await start_server(
            create_app(self.ctx), host, port, **tls_kwargs(cfg.api)
        )
        log.info(
            "otel-ai ready: api %s://%s, otlp grpc %s, otlp http %s, storage %s",
            "https" if cfg.api.tls_cert_file else "http", cfg.server.api, cfg.server.otlp_grpc, cfg.server.otlp_http, self.storage.redacted_dsn,
        )  # fmt: skip

    def _start_analyzers(self) -> None:
        for analyzer in self.analyzers:
            analyzer.start()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, wait for SIGTERM/SIGINT, drain. A second signal forces an immediate exit."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        count = 0

        def on_signal() -> None:
            nonlocal count
            count += 1
            if count == 1:
                log.info("signal received: draining (send again to force)")
                self._stop.set()
            else:
                log.warning("second signal: forcing exit")
                import os

                os._exit(130)

        self.claim()  # before anything starts: a second daemon exits with one line
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.shutdown()
            for sig in signals:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        timeout = self.config.server.shutdown_timeout_s
        if self.receivers is not None:
            await self.receivers.shutdown(grace_s=min(5.0, timeout / 3))
        if self.pipeline is not None:
            await self.pipeline.shutdown(timeout_s=timeout)
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.shutdown, False)
        for analyzer in self.analyzers:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(analyzer.shutdown)
        if self.ctx.llm is not None:
            with contextlib.suppress(Exception):
                await self.ctx.llm.aclose()
        if self._api_server is not None and self._api_task is not None:
            await stop_server(self._api_server, self._api_task)
        await asyncio.to_thread(self.memory.shutdown)
        await asyncio.to_thread(self.storage.shutdown)
        for claim in self._claims:
            claim.release()
        self._claims = []
        log.info("otel-ai stopped")
