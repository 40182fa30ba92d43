"""What the API handlers can reach: the daemon's running components."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from otel_ai.storage import Storage

if TYPE_CHECKING:  # the config composes every room's section, the API's included
    from otel_ai.config import Config


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
    pipeline: Any | None = None
    memory: Any | None = None
    receivers: Any | None = None
    scheduler: Any | None = None
    llm: Any | None = None
    topology: Any | None = None
    anomaly: Any | None = None
    insights: Any | None = None
    reports: Any | None = None
    extras: dict[str, Any] = field(default_factory=dict)
