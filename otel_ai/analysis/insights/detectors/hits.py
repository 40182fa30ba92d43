"""Occurrences of one pattern across the sampled traces, and the :class:`Impact` they add up to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from otel_ai.analysis.insights.detectors.sample import Trace, TraceSample
from otel_ai.analysis.insights.model import Impact


@dataclass
class Hits:
    """Where one pattern (one finding key) was seen: traces, per-occurrence figures, times."""

    traces: dict[str, Trace] = field(default_factory=dict)
    figures: dict[str, list[float]] = field(default_factory=dict)
    first_ns: int = 0
    last_ns: int = 0
    occurrences: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, trace: Trace, t_ns: int, **figures: float) -> None:
        self.traces.setdefault(trace.trace_id, trace)
        self.occurrences += 1
        self.first_ns = t_ns if not self.first_ns else min(self.first_ns, t_ns)
        self.last_ns = max(self.last_ns, t_ns)
        for name, value in figures.items():
            self.figures.setdefault(name, []).append(float(value))

    def mean(self, name: str) -> float:
        values = self.figures.get(name, [])
        return sum(values) / len(values) if values else 0.0

    def max(self, name: str) -> float:
        return max(self.figures.get(name, [0.0]))

    def trace_ids(self, n: int) -> tuple[str, ...]:
        return tuple(sorted(self.traces)[:n])

    @property
    def entries(self) -> set[str]:
        return {t.entry for t in self.traces.values()}


def impact(
    sample: TraceSample,
    hits: Hits,
    *,
    latency_ms: float | None = None,
    error_share: float | None = None,
    entries: Iterable[str] | None = None,
) -> Impact:
    """Affected traces scaled to the window, against the traffic of the entry points touched."""
    touched = set(entries) if entries is not None else hits.entries
    return Impact(
        affected_traces=sample.scaled(hits.traces.values()),
        total_traces=sample.entry_traces(touched),
        entry_share=round(sample.entry_share(touched), 4),
        latency_ms=round(latency_ms, 3) if latency_ms is not None else None,
        error_share=round(error_share, 4) if error_share is not None else None,
        duration_s=round(max(0, hits.last_ns - hits.first_ns) / 1e9, 3),
        at_entry=any(t.root.kind in ("Server", "Consumer") for t in hits.traces.values()),
    )


def share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
