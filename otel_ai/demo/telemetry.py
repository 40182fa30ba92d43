"""One ``TracerProvider`` / ``LoggerProvider`` / ``MeterProvider`` per simulated service.

Each simulated service gets its own SDK providers and resource (``service.name``,
``service.version``, ``service.namespace``, ``deployment.environment.name`` …), exactly what an
instrumented service of the OpenTelemetry demo sends. The span and log processors are *shared*:
one queue, one worker thread and one exporter for all services, so the exporter sends large
batches that group spans by resource — the cheapest shape for the generator and the daemon.
Metrics need a reader per provider (the SDK binds a reader to one provider), so they are created
only in real-time mode: the SDK's metric API takes no explicit timestamps, so a backfill cannot
emit metrics for past instants.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.sdk._logs import Logger, LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, Tracer, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator


@dataclass(frozen=True)
class ServiceInfo:
    """A simulated demo service: how it is built and how it is called."""

    name: str
    language: str
    version: str = "2.1.3"
    rpc_service: str | None = None  # gRPC service name when it serves gRPC, else HTTP
    port: int = 8080


SERVICES: dict[str, ServiceInfo] = {
    s.name: s
    for s in (
        ServiceInfo("frontend-proxy", "cpp", port=8080),
        ServiceInfo("frontend", "nodejs", port=8080),
        ServiceInfo("image-provider", "cpp", port=8081),
        ServiceInfo("ad", "java", rpc_service="oteldemo.AdService", port=9555),
        ServiceInfo("cart", "dotnet", rpc_service="oteldemo.CartService", port=7070),
        ServiceInfo("checkout", "go", rpc_service="oteldemo.CheckoutService", port=5050),
        ServiceInfo("currency", "cpp", rpc_service="oteldemo.CurrencyService", port=7001),
        ServiceInfo("email", "ruby", port=6060),
        ServiceInfo("payment", "nodejs", rpc_service="oteldemo.PaymentService", port=50051),
        ServiceInfo("product-catalog", "go", rpc_service="oteldemo.ProductCatalogService", port=3550),
        ServiceInfo("quote", "php", port=8090),
        ServiceInfo("recommendation", "python", rpc_service="oteldemo.RecommendationService", port=9001),
        ServiceInfo("shipping", "rust", port=50050),
        ServiceInfo("accounting", "dotnet"),
        ServiceInfo("fraud-detection", "java"),
        ServiceInfo("flagd", "go", rpc_service="flagd.evaluation.v1.Service", port=8013),
    )
}


@dataclass
class ServiceState:
    """Live values the observable gauges report (updated by the generator every simulated second)."""

    cpu: float = 0.05
    memory_bytes: float = 120e6
    consumer_lag_s: float = 0.0


@dataclass
class ServiceMetrics:
    duration: Histogram
    unit_scale: float  # ns → the histogram's unit


@dataclass
class Telemetry:
    """Lazily builds the providers of each (service, version) and owns their shutdown."""

    span_processor: SpanProcessor
    log_processor: LogRecordProcessor | None
    id_generator: IdGenerator
    seed: int = 0
    environment: str = "demo"
    metric_exporter: Callable[[], MetricExporter] | None = None
    metric_interval_ms: int = 10_000
    wire: bool = False  # backfill: light spans (otel_ai.demo.wire) instead of SDK spans
    instances: int = 2  # replicas per service (a single-instance service is a single point of failure)
    # service.instance.id of the instances whose exporter sends OTLP/JSON (shared with the exporter)
    json_instances: set[str] = field(default_factory=set)
    _tracers: dict[tuple[str, str, str, str], Tracer] = field(default_factory=dict)
    _loggers: dict[str, Logger] = field(default_factory=dict)
    _meters: dict[str, ServiceMetrics] = field(default_factory=dict)
    _meter_providers: list[MeterProvider] = field(default_factory=list)
    state: dict[str, ServiceState] = field(default_factory=dict)

    def resource(
        self, service: str, version: str | None = None, sdk: str | None = None, instance: int | str = 0
    ) -> Resource:
        """``instance``: which replica of the service (0, 1, … or a tag such as ``"json"``); ``sdk``:
        another OpenTelemetry SDK version, run by another instance of the service."""
        info = SERVICES[service]
        tag = "" if instance in (0, "") else f"#{instance}"
        rng = random.Random(f"{self.seed}/{service}{tag}" + (f"/{sdk}" if sdk else ""))
        instance_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        extra = {"telemetry.sdk.version": sdk} if sdk else {}
        return Resource.create(
            {
                "service.name": service,
                "service.version": version or info.version,
                "service.namespace": "opentelemetry-demo",
                "service.instance.id": instance_id,
                "deployment.environment": self.environment,
                "deployment.environment.name": self.environment,
                "host.name": f"{service}-{instance_id[:8]}",
                "telemetry.sdk.language": info.language,
                "otel_ai.demo": True,
                **extra,
            }
        )

    def tracer(
        self, service: str, version: str | None = None, sdk: str | None = None, instance: int | str = 0,
        encoding: str = "",
    ) -> Tracer:  # fmt: skip
        """The tracer of one instance; ``encoding="json"`` marks an instance whose exporter sends
        OTLP/JSON (its ``service.instance.id`` joins :attr:`json_instances`, which the exporter reads)."""
        key = (service, version or SERVICES[service].version, sdk or "", str(instance))
        known = self._tracers.get(key)
        if known is not None:
            return known
        resource = self.resource(service, key[1], sdk, instance)
        tracer: Tracer
        if encoding == "json":
            self.json_instances.add(str(resource.attributes["service.instance.id"]))
        if self.wire:
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope

            from otel_ai.demo.wire import WireTracer

            scope = InstrumentationScope("oteldemo", key[1])
            tracer = WireTracer(self.span_processor, resource, scope, self.id_generator)  # type: ignore[assignment]
        else:
            provider = TracerProvider(
                resource=resource, id_generator=self.id_generator, shutdown_on_exit=False
            )
            provider.add_span_processor(self.span_processor)
            tracer = provider.get_tracer("oteldemo", key[1])  # type: ignore[assignment]
        self._tracers[key] = tracer
        return tracer

    def logger(self, service: str, instance: int | str = 0) -> Logger | None:
        """The logger of one instance: a log record carries the resource of the span it is about."""
        if self.log_processor is None:
            return None
        key = f"{service}#{instance}"
        logger = self._loggers.get(key)
        if logger is None:
            sdk = "1.20.0" if instance == "sdk" else None
            provider = LoggerProvider(
                resource=self.resource(service, None, sdk, instance), shutdown_on_exit=False
            )
            provider.add_log_record_processor(self.log_processor)
            logger = provider.get_logger("oteldemo")  # type: ignore[assignment]
            self._loggers[key] = logger  # type: ignore[assignment]
        return logger

    def metrics(self, service: str) -> ServiceMetrics | None:
        if self.metric_exporter is None:
            return None
        m = self._meters.get(service)
        if m is None:
            m = self._build_meters(service)
            self._meters[service] = m
        return m

    def _build_meters(self, service: str) -> ServiceMetrics:
        assert self.metric_exporter is not None
        reader = PeriodicExportingMetricReader(
            self.metric_exporter(), export_interval_millis=self.metric_interval_ms
        )
        provider = MeterProvider(
            resource=self.resource(service), metric_readers=[reader], shutdown_on_exit=False
        )
        self._meter_providers.append(provider)
        meter = provider.get_meter("oteldemo")
        st = self.state.setdefault(service, ServiceState())

        def gauge(value: Callable[[], float]) -> Callable[[CallbackOptions], Iterable[Observation]]:
            return lambda _opts: [Observation(value())]

        meter.create_observable_gauge("process.cpu.utilization", [gauge(lambda: st.cpu)], unit="1")
        meter.create_observable_gauge("process.memory.usage", [gauge(lambda: st.memory_bytes)], unit="By")
        if service in ("accounting", "fraud-detection"):
            meter.create_observable_gauge(
                "app.kafka.consumer.lag", [gauge(lambda: st.consumer_lag_s)], unit="s"
            )
        if SERVICES[service].rpc_service:
            return ServiceMetrics(meter.create_histogram("rpc.server.duration", unit="ms"), 1e-6)
        return ServiceMetrics(meter.create_histogram("http.server.request.duration", unit="s"), 1e-9)

    def force_flush(self, timeout_s: float = 60.0) -> None:
        self.span_processor.force_flush(int(timeout_s * 1000))
        if self.log_processor is not None:
            self.log_processor.force_flush(int(timeout_s * 1000))
        # Metrics are exported once more by shutdown(), under its own deadline.

    def shutdown(self, timeout_s: float = 10.0) -> None:
        # Each MeterProvider exports once more on shutdown: do them side by side under one
        # deadline, so a daemon that does not answer delays the exit by timeout_s, not 16 x.
        threads = [threading.Thread(target=mp.shutdown, kwargs={"timeout_millis": int(timeout_s * 1000)}, daemon=True)
                   for mp in self._meter_providers]  # fmt: skip
        for th in threads:
            th.start()
        deadline = time.monotonic() + timeout_s
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        self.span_processor.shutdown()
        if self.log_processor is not None:
            self.log_processor.shutdown()
