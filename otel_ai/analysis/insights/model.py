"""Domain values of the insights room: what a detector finds and what it hands the pipeline.

A detector is deterministic: SQL over stored spans (and the topology / anomaly rooms' output),
no LLM. It returns :class:`Finding` values; the pipeline turns each into an ``Insight`` record
(severity and confidence computed by code from :class:`Impact`, fingerprint from
:attr:`Finding.key`, lifecycle, narrative by the LLM manager, validation of claims).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from otel_ai.storage import Storage

Kind = Literal[
    "n_plus_one",
    "sequential_calls",
    "fan_out",
    "retry_storm",
    "chatty_dependency",
    "dependency_cycle",
    "critical_path_hotspot",
    "error_propagation",
    "single_point_of_failure",
    "slow_query",
    "queue_lag",
    "new_dependency",
    "vanished_dependency",
    "encoding_drift",
    "sdk_drift",
    "anomaly",
]
KINDS: tuple[Kind, ...] = Kind.__args__  # type: ignore[attr-defined]

Category = Literal["performance", "reliability", "architecture", "change", "pipeline"]
EntityKind = Literal["service", "operation", "edge", "database", "messaging", "external"]
EvidenceKind = Literal["metric", "span_pattern", "topology", "anomaly", "trace", "deploy"]
ChangeType = Literal["deploy", "latency", "errors", "traffic", "dependency", "configuration", "unknown"]


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def previous(self) -> Window:
        """The comparison period: the window of the same length just before this one."""
        return Window(self.start - (self.end - self.start), self.start)


@dataclass(frozen=True)
class Entity:
    """An entity named by the topology's node ids: ``service``, ``postgresql/orders``,
    an edge ``"caller->callee"``, an operation ``"service:operation"``."""

    kind: EntityKind
    id: str


@dataclass(frozen=True)
class Evidence:
    """One figure that proves a finding. ``id`` is stable across runs for the same finding
    (e.g. ``"n_plus_one:cart:GET /cart:calls"``) so that claims can cite it."""

    id: str
    kind: EvidenceKind
    description: str
    observed: float | str | None = None
    baseline: float | str | None = None
    unit: str = ""
    trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RootCause:
    entity: Entity
    change_type: ChangeType
    evidence_ids: tuple[str, ...]


@dataclass(frozen=True)
class Recommendation:
    """A deterministic recommendation (the LLM may reword, never invent new entities)."""

    action: str
    rationale: str
    evidence_ids: tuple[str, ...]


@dataclass(frozen=True)
class Impact:
    """What code needs to set severity and confidence (never the model).

    - ``affected_traces`` / ``total_traces``: traces showing the pattern / traces through the
      entry points it touches in the window (share of traffic = their ratio);
    - ``entry_share``: share of *all* entry-point requests in the window that pass through it;
    - ``latency_ms``: extra latency per affected request attributable to it (or ``None``);
    - ``error_share``: share of entry errors it explains (or ``None``);
    - ``duration_s``: how long it has been visible within the window;
    - ``at_entry``: whether it reaches an entry point (user-facing).
    """

    affected_traces: int
    total_traces: int
    entry_share: float = 0.0
    latency_ms: float | None = None
    error_share: float | None = None
    duration_s: float = 0.0
    at_entry: bool = False


@dataclass(frozen=True)
class Finding:
    kind: Kind
    category: Category
    title: str
    # Stable discriminator of this finding (without the kind): sorted entity ids plus whatever
    # tells two findings of one kind apart (a normalised statement, a topic). The fingerprint is
    # a hash of (kind, key).
    key: str
    entities: tuple[Entity, ...]
    evidence: tuple[Evidence, ...]
    impact: Impact
    root_cause: RootCause | None = None
    recommendations: tuple[Recommendation, ...] = ()
    # Named figures for the rules narrative and prompts (e.g. {"calls_per_request": 12.0}).
    facts: dict[str, float | str] = field(default_factory=dict)
    # ``severity_cap`` lets a detector say "never above this" (e.g. a store whose replication
    # cannot be seen from the spans is at most ``low``).
    severity_cap: Literal["critical", "high", "medium", "low", "info"] | None = None


@dataclass
class DetectContext:
    """What every detector gets: the store, the window and its comparison period, and the
    other rooms' output for the window (a topology snapshot dict in the API's shape and the
    anomalies overlapping the window, both optional)."""

    storage: Storage
    window: Window
    topology: dict[str, Any] | None = None
    anomalies: Sequence[dict[str, Any]] = ()
    # Per-run scratch the detectors share (e.g. the trace sample, read once per run).
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def previous(self) -> Window:
        return self.window.previous()


class Detector(Protocol):
    """One detector per ``kind``. ``detect`` must not raise for empty or odd data."""

    kind: Kind

    def detect(self, ctx: DetectContext) -> list[Finding]: ...
