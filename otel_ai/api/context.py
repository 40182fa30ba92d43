"""What the API handlers can reach: the daemon's running components."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from otel_ai.storage import Storage

if TYPE_CHECKING:  # types only: the config composes the API's section; the rooms sit below the API
    from apscheduler.schedulers.background import BackgroundScheduler

    from otel_ai.analysis.anomaly.service import AnomalyService
    from otel_ai.analysis.insights.service import InsightsService
    from otel_ai.analysis.topology.service import TopologyService
    from otel_ai.config import Config
    from otel_ai.ingest import Receivers
    from otel_ai.llm.manager import LLMManager
    from otel_ai.pipeline import Pipeline
    from otel_ai.pipeline.memory import MemoryGuard
    from otel_ai.reports.service import ReportService


@dataclass
class AppContext:
    """The running daemon's components, handed to :func:`otel_ai.api.create_app`.

    Optional members are ``None`` when a role does not run them (an ``ingest``-only instance has
    no analyzers; an ``analyzer`` instance has no receivers).
    """

    config: Config
    storage: Storage
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    started_at: float = field(default_factory=time.time)
    pipeline: Pipeline | None = None
    memory: MemoryGuard | None = None
    receivers: Receivers | None = None
    scheduler: BackgroundScheduler | None = None
    llm: LLMManager | None = None
    topology: TopologyService | None = None
    anomaly: AnomalyService | None = None
    insights: InsightsService | None = None
    reports: ReportService | None = None
    extras: dict[str, Any] = field(default_factory=dict)
