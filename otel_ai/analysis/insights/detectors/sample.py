"""A bounded, deterministic sample of whole traces for the structural detectors.

N+1 queries, sequential calls, fan-out, retries, chattiness, the critical path and error chains
are properties of one trace's tree. One SQL query picks up to ``per_entry_operation`` traces per
entry operation (root service + root span name; by a hash of the trace id, so every run over the
same window picks the same traces), at most ``max_traces`` in all, and reads only the narrow
columns the detectors need, with the peer name and the normalised statement computed in SQL. The
detectors walk the trees in memory; counts are scaled back to the window by each entry
operation's exact trace count (a second, aggregate query). Memory is bounded by ``max_spans``
whatever the window holds. The sample is built once per detection run (cached on the context).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from otel_ai.analysis.insights.detectors.common import KEY_EXPR, VIRTUAL_ID, VIRTUAL_KIND, naive
from otel_ai.analysis.insights.detectors.config import DetectorsConfig, SampleConfig
from otel_ai.analysis.insights.model import DetectContext, Kind

_CLIENT = "SpanKind IN ('Client', 'Producer')"
_ROOTS = """
    SELECT TraceId FROM {db:Identifier}.otel_traces
    PREWHERE (@ROOT_RANGES@) AND ParentSpanId = ''
    ORDER BY cityHash64(TraceId)
    LIMIT {per_op:UInt32} BY ServiceName, SpanName
    LIMIT {max_traces:UInt32}"""
_SPANS = f"""
SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanName, SpanKind,
       toUnixTimestamp64Nano(Timestamp) AS s, s + Duration AS e, StatusCode = 'Error' AS err,
       if({_CLIENT}, {VIRTUAL_ID}, '') AS vid, if({_CLIENT}, {VIRTUAL_KIND}, '') AS vkind,
       if({_CLIENT}, {KEY_EXPR}, '') AS skey,
       toUInt32OrZero(SpanAttributes['http.request.resend_count']) AS resend
FROM {{db:Identifier}}.otel_traces
PREWHERE (@SPAN_RANGES@) AND TraceId IN ({_ROOTS})
LIMIT {{max_spans:UInt32}}
"""
ENTRY_TOTALS_SQL = """
SELECT ServiceName, SpanName, count() AS n FROM {db:Identifier}.otel_traces
PREWHERE Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)} AND ParentSpanId = ''
GROUP BY ServiceName, SpanName
"""


def _ranges(name: str, n: int) -> str:
    return " OR ".join(
        f"(Timestamp >= {{{name}_lo{i}:DateTime64(9)}} AND Timestamp < {{{name}_hi{i}:DateTime64(9)}})"
        for i in range(n)
    )


def slices(
    window_start: datetime, window_end: datetime, roots: int, cfg: SampleConfig
) -> list[tuple[datetime, datetime]]:
    """Where the sample's traces start: the whole window, or, when it holds more than twice
    ``max_traces`` roots, ``cfg.slices`` evenly spread slices covering just enough of it.

    Spans are stored in (service, operation, time) order, so traces that start close in time
    share granules: reading a tenth of the window's time reads about a tenth of its data, where
    the same number of traces spread over the whole window would touch every granule.
    """
    if roots <= 2 * cfg.max_traces or cfg.slices <= 1:
        return [(window_start, window_end)]
    length = window_end - window_start
    fraction = min(1.0, 2 * cfg.max_traces / roots)
    step = length / cfg.slices
    width = step * fraction
    return [(window_start + step * i, window_start + step * i + width) for i in range(cfg.slices)]


class SpanRow:
    """One span of a sampled trace (times in ns since the epoch)."""

    __slots__ = (
        "callee",
        "callee_kind",
        "children",
        "end",
        "error",
        "key",
        "kind",
        "name",
        "parent",
        "peer",
        "peer_kind",
        "resend",
        "service",
        "span",
        "start",
        "trace",
    )

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.trace: str = row[0]
        self.span: str = row[1]
        self.parent: str = row[2]
        self.service: str = row[3]
        self.name: str = row[4]
        self.kind: str = row[5]
        self.start, self.end = int(row[6]), int(row[7])
        self.error = bool(row[8])
        self.peer: str = row[9]
        self.peer_kind: str = row[10]
        self.key: str = row[11]
        self.resend = int(row[12])
        self.children: list[SpanRow] = []
        self.callee = ""
        self.callee_kind = ""

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def is_client(self) -> bool:
        return self.kind in ("Client", "Producer")


@dataclass
class Trace:
    trace_id: str
    root: SpanRow
    spans: list[SpanRow]

    @property
    def entry(self) -> str:
        """The entry operation ``service:operation`` (the root span)."""
        return f"{self.root.service}:{self.root.name}"


@dataclass
class TraceSample:
    traces: list[Trace]
    # entry operation → traces of it in the window (exact) and in the sample
    entry_totals: dict[str, int] = field(default_factory=dict)
    entry_sampled: dict[str, int] = field(default_factory=dict)

    @property
    def total_traces(self) -> int:
        return sum(self.entry_totals.values())

    def scale(self, entry: str) -> float:
        sampled = self.entry_sampled.get(entry, 0)
        return self.entry_totals.get(entry, sampled) / sampled if sampled else 1.0

    def scaled(self, traces: Iterable[Trace]) -> int:
        """How many traces of the window the given sampled traces stand for."""
        return round(sum(self.scale(t.entry) for t in traces))

    def entry_traces(self, entries: Iterable[str]) -> int:
        return sum(self.entry_totals.get(e, 0) for e in set(entries))

    def entry_share(self, entries: Iterable[str]) -> float:
        total = self.total_traces
        return self.entry_traces(entries) / total if total else 0.0


def _link(spans: list[SpanRow]) -> SpanRow | None:
    """Wire children to parents and name each client span's callee; return the root."""
    by_id = {s.span: s for s in spans}
    root = None
    for s in spans:
        parent = by_id.get(s.parent) if s.parent else None
        if parent is None:
            if not s.parent and (root is None or s.start < root.start):
                root = s
            continue
        parent.children.append(s)
    for s in spans:
        s.children.sort(key=lambda c: (c.start, c.span))
        if s.is_client:
            other = next((c for c in s.children if c.service != s.service), None)
            if other is not None:
                s.callee, s.callee_kind = other.service, "service"
            elif s.peer:
                s.callee, s.callee_kind = s.peer, s.peer_kind
    return root


def load(ctx: DetectContext, cfg: SampleConfig) -> TraceSample:
    """The window's trace sample (built once per context)."""
    cached = ctx.cache.get("trace_sample")
    if isinstance(cached, TraceSample):
        return cached
    w = ctx.window
    p: dict[str, object] = {"db": ctx.storage.database, "start": naive(w.start), "end": naive(w.end)}
    totals = {f"{svc}:{name}": int(n) for svc, name, n in ctx.storage.query(ENTRY_TOTALS_SQL, p)}
    ranges = slices(w.start, w.end, sum(totals.values()), cfg)
    margin = timedelta(seconds=cfg.margin_s)
    for i, (lo, hi) in enumerate(ranges):
        p |= {
            f"r_lo{i}": naive(lo),
            f"r_hi{i}": naive(hi),
            f"s_lo{i}": naive(lo),
            f"s_hi{i}": naive(hi) + margin,
        }
    sql = _SPANS.replace("@SPAN_RANGES@", _ranges("s", len(ranges))).replace(
        "@ROOT_RANGES@", _ranges("r", len(ranges))
    )
    rows = ctx.storage.query(
        sql,
        {**p, "per_op": cfg.per_entry_operation, "max_traces": cfg.max_traces, "max_spans": cfg.max_spans},
    )
    by_trace: dict[str, list[SpanRow]] = {}
    for r in rows:
        span = SpanRow(r)
        by_trace.setdefault(span.trace, []).append(span)
    traces: list[Trace] = []
    for tid in sorted(by_trace):
        spans = by_trace[tid]
        root = _link(spans)
        if root is not None:
            traces.append(Trace(tid, root, spans))
    sample = TraceSample(traces, entry_totals=totals)
    for t in traces:
        sample.entry_sampled[t.entry] = sample.entry_sampled.get(t.entry, 0) + 1
    ctx.cache["trace_sample"] = sample
    return sample


C = TypeVar("C")


class SampleDetector(Generic[C]):
    """Base of the detectors that read the trace sample.

    ``cfg`` is the detector's own section of ``insights.detectors`` (named like its ``kind``),
    ``sample_cfg`` the shared sampling settings, ``n_examples`` how many example traces to cite.
    """

    kind: Kind

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg: C = getattr(config, self.kind)
        self.sample_cfg: SampleConfig = config.sample
        self.n_examples: int = config.example_traces
