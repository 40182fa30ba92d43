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
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Literal

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from otel_ai.analysis.anomaly.service import build_anomaly_service
from otel_ai.analysis.insights.service import build_insights_service
from otel_ai.analysis.topology.service import build_topology_service
from otel_ai.api import AppContext, create_app
from otel_ai.config import Config
from otel_ai.ingest import Receivers
from otel_ai.instance import Claim, claim_instance
from otel_ai.llm.service import build_llm_manager
from otel_ai.pipeline import Pipeline
from otel_ai.pipeline.memory import MemoryGuard
from otel_ai.reports.service import build_report_service
from otel_ai.sections import split_host_port
from otel_ai.serving import EmbeddedServer, start_server, stop_server, tls_kwargs
from otel_ai.storage import Storage
from otel_ai.storage.writer import TelemetryWriter

log = logging.getLogger(__name__)


@dataclass
class SignalPolicy:
    """What a SIGTERM/SIGINT means: the first drains; a repeat forces exit only once the drain
    has started and ``grace_s`` has passed since both the first signal and the drain's start.

    One event often arrives as two signals: ``kill -TERM -PGID`` on ``make run`` (what a
    supervisor or a closing terminal does) reaches the daemon directly and again from make,
    which passes it on to its child. Treating that second copy as "force" would skip the drain.
    """

    grace_s: float = 2.0
    first_at: float | None = None

    def on_signal(self, now: float, draining_since: float | None) -> Literal["drain", "repeat", "force"]:
        if self.first_at is None:
            self.first_at = now
            return "drain"
        if draining_since is None or now - max(self.first_at, draining_since) < self.grace_s:
            return "repeat"
        return "force"


class Daemon:
    def __init__(self, config: Config, *, claims: list[Claim] | None = None) -> None:
        self.config = config
        self._claims: list[Claim] = list(claims or [])  # the store and spool locks (otel_ai.instance)
        self.registry = CollectorRegistry()
        self.storage = Storage(config.storage)
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
        self._draining_since: float | None = None

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
        # Before the pipeline inserts: the topology migration that hands the insert-time views
        # over to the span ingest job needs a store nobody is writing to.
        self.ctx.topology = build_topology_service(self.storage, cfg.topology, self.registry)
        await asyncio.to_thread(self.ctx.topology.start)

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
            self.ctx.topology.yield_to_ingest(self.pipeline.backlogged)

        self.ctx.llm = await asyncio.to_thread(build_llm_manager, cfg.llm, self.storage, self.registry)
        self.ctx.anomaly = build_anomaly_service(
            self.storage, cfg.anomaly, self.registry, topology=self.ctx.topology
        )
        self.ctx.insights = build_insights_service(
            self.storage, cfg.insights, self.registry, topology=self.ctx.topology, anomaly=self.ctx.anomaly,
            llm=self.ctx.llm,
        )  # fmt: skip
        self.ctx.reports = build_report_service(
            self.storage, cfg.reports, self.registry, sources=self.ctx, loop=asyncio.get_running_loop()
        )
        self.analyzers = [
            a
            for a in (self.ctx.topology, self.ctx.anomaly, self.ctx.insights, self.ctx.reports)
            if a is not None
        ]
        await asyncio.to_thread(self._start_analyzers)
        if runs_analyzers and cfg.scheduler.enabled:
            self.scheduler = BackgroundScheduler(
                timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
            )
            for analyzer in self.analyzers:
                analyzer.register_jobs(self.scheduler)
            self.scheduler.start()
            self.ctx.scheduler = self.scheduler

        host, port = split_host_port(cfg.server.api)
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
        """Start, wait for SIGTERM/SIGINT, drain. A later second signal forces an immediate exit."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        policy = SignalPolicy()

        def on_signal() -> None:
            action = policy.on_signal(time.monotonic(), self._draining_since)
            if action == "drain":
                log.info("signal received: draining (send it again after %g s to force exit)", policy.grace_s)
                self._stop.set()
            elif action == "repeat":
                log.info("repeated signal within %g s: the drain goes on", policy.grace_s)
            else:
                log.warning("second signal: forcing exit")
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
        self._draining_since = time.monotonic()
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
