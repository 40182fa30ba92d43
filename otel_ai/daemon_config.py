"""The daemon's own sections: ``server`` (listen addresses, role, shutdown), ``scheduler``, ``logging``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from otel_ai.sections import HostPort, Section


class ServerConfig(Section):
    otlp_grpc: HostPort = "127.0.0.1:4317"
    otlp_http: HostPort = "127.0.0.1:4318"
    api: HostPort = "127.0.0.1:8700"
    # Receivers can be switched off (e.g. an analyzer-only instance in a cluster).
    receivers_enabled: bool = True
    # Role in a scaled-out deployment: "all" runs receivers and the scheduled analyzers,
    # "ingest" runs receivers only, "analyzer" runs the analyzers only.
    role: Literal["all", "ingest", "analyzer"] = "all"
    shutdown_timeout_s: float = Field(default=15.0, gt=0)


class SchedulerConfig(Section):
    enabled: bool = True


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False
