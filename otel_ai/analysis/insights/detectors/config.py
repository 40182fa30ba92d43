"""Thresholds of the detectors (YAML ``insights.detectors``); one sub-section per kind.

Every section has ``enabled`` and ``min_traces`` (affected traces in the window below which the
detector stays silent); the rest are the kind's own thresholds. ``docs/insights.md`` lists them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Affected traces (in the window, scaled from the trace sample) before the detector speaks.
    min_traces: int = Field(default=3, ge=1)


class SampleConfig(BaseModel):
    """The bounded per-trace sample the structural detectors read (see ``sample.py``)."""

    model_config = ConfigDict(extra="forbid")

    # Traces kept per entry operation (root service + root span name), chosen by a hash of the
    # trace id so the same traces are picked on every run over the same window.
    per_entry_operation: int = Field(default=300, ge=10)
    max_traces: int = Field(default=5000, ge=10)
    max_spans: int = Field(default=200_000, ge=1000)
    # Spans of a sampled trace may start this long after its slice (or the window) ends.
    margin_s: int = Field(default=30, ge=0, le=600)
    # A window with more than 2 x max_traces roots is sampled from this many evenly spread time
    # slices, together just wide enough for the sample (see sample.py): bounded reads.
    slices: int = Field(default=12, ge=1, le=120)


class NPlusOneConfig(_Base):
    # Sentry's N+1 thresholds: at least this many sequential calls with the same normalised
    # statement / route to the same peer under one parent, together at least total_ms.
    min_calls: int = Field(default=5, ge=2)
    min_total_ms: float = Field(default=50.0, ge=0)


class SequentialCallsConfig(_Base):
    # Non-overlapping sibling calls to distinct peers/operations; running them in parallel would
    # save at least min_saving_ms and min_saving_share of the parent's duration.
    min_calls: int = Field(default=2, ge=2)
    min_saving_ms: float = Field(default=100.0, ge=0)
    min_saving_share: float = Field(default=0.10, ge=0, le=1)


class FanOutConfig(_Base):
    # At least this many downstream calls in flight at once under one span.
    min_concurrent: int = Field(default=10, ge=2)


class RetryStormConfig(_Base):
    # Attempts of one callee operation under one parent, after a failed attempt (or any call
    # carrying http.request.resend_count > 0).
    min_attempts: int = Field(default=3, ge=2)
    min_amplification: float = Field(default=1.5, ge=1.0)


class ChattyDependencyConfig(_Base):
    # Calls per request between two services (in the traces where they talk at all).
    min_calls_per_request: float = Field(default=10.0, ge=1.0)


class DependencyCycleConfig(_Base):
    # Calls every edge of the cycle needs in the window.
    min_calls: int = Field(default=3, ge=1)


class CriticalPathConfig(_Base):
    # One service / peer holding at least this share of an entry operation's critical path,
    # and at least min_held_ms of it per request on average.
    min_share: float = Field(default=0.5, gt=0, le=1)
    min_held_ms: float = Field(default=50.0, ge=0)
    min_entry_traces: int = Field(default=10, ge=1)


class ErrorPropagationConfig(_Base):
    min_traces: int = Field(default=5, ge=1)
    # Share of the entry operation's traces that fail through this origin.
    min_error_rate: float = Field(default=0.01, ge=0, le=1)


class SpofConfig(_Base):
    # A single-instance service on the path of at least this share of all traces.
    min_traffic_share: float = Field(default=0.5, gt=0, le=1)
    min_traces: int = Field(default=20, ge=1)
    # Databases, queues and externals on that path are raised too, at most at severity low
    # (their replication cannot be seen from the spans).
    include_stores: bool = True


class SlowQueryConfig(_Base):
    min_p95_ms: float = Field(default=500.0, ge=0)
    # The statement holding the largest share of DB time speaks when that share is at least
    # dominant_share and its p95 at least dominant_min_p95_ms.
    dominant_share: float = Field(default=0.5, gt=0, le=1)
    dominant_min_p95_ms: float = Field(default=100.0, ge=0)
    min_calls: int = Field(default=5, ge=1)


class QueueLagConfig(_Base):
    # Producer end → consumer start, p95 per topic and consumer.
    min_p95_lag_ms: float = Field(default=1000.0, ge=0)
    min_messages: int = Field(default=5, ge=1)


class DependencyChangeConfig(_Base):
    # Calls an edge needs on the side where it exists; the other side needs at least
    # min_compare_spans spans of the caller to count as "earlier data".
    min_calls: int = Field(default=5, ge=1)
    min_compare_spans: int = Field(default=20, ge=1)
    # A quiet edge present on one side only may be chance: at one rate per caller span, an edge
    # with n calls misses the other side with probability q**n (q: the caller's spans on the
    # side with calls / on both). Speaks only below this (0.001: ~10 calls with equal sides).
    max_chance: float = Field(default=0.001, gt=0, le=1)


class DriftConfig(_Base):
    # Spans each variant (encoding, SDK) needs before it counts.
    min_spans: int = Field(default=10, ge=1)


class AnomalyConfig(_Base):
    min_traces: int = Field(default=1, ge=0)


class DetectorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample: SampleConfig = Field(default_factory=SampleConfig)
    # Example trace ids kept per evidence item.
    example_traces: int = Field(default=5, ge=0, le=50)
    n_plus_one: NPlusOneConfig = Field(default_factory=NPlusOneConfig)
    sequential_calls: SequentialCallsConfig = Field(default_factory=SequentialCallsConfig)
    fan_out: FanOutConfig = Field(default_factory=FanOutConfig)
    retry_storm: RetryStormConfig = Field(default_factory=RetryStormConfig)
    chatty_dependency: ChattyDependencyConfig = Field(default_factory=ChattyDependencyConfig)
    dependency_cycle: DependencyCycleConfig = Field(default_factory=DependencyCycleConfig)
    critical_path_hotspot: CriticalPathConfig = Field(default_factory=CriticalPathConfig)
    error_propagation: ErrorPropagationConfig = Field(default_factory=ErrorPropagationConfig)
    single_point_of_failure: SpofConfig = Field(default_factory=SpofConfig)
    slow_query: SlowQueryConfig = Field(default_factory=SlowQueryConfig)
    queue_lag: QueueLagConfig = Field(default_factory=QueueLagConfig)
    new_dependency: DependencyChangeConfig = Field(default_factory=DependencyChangeConfig)
    vanished_dependency: DependencyChangeConfig = Field(default_factory=DependencyChangeConfig)
    encoding_drift: DriftConfig = Field(default_factory=DriftConfig)
    sdk_drift: DriftConfig = Field(default_factory=DriftConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
