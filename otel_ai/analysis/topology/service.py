"""Topology service: queries over closed windows, the per-minute edge rollup and snapshots.

``topology(start, end)`` answers from the rollup for whole minutes it covers at their current
span count and computes everything else live (partial first/last minute, minutes that changed
since they were rolled up, minutes never rolled up), then merges both in one SQL statement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from otel_ai.analysis.topology import queries as q
from otel_ai.analysis.topology.assemble import build_edges, build_nodes, build_services, diff_topologies
from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.analysis.topology.ingest import IngestState, SpanIngest
from otel_ai.analysis.topology.model import ServicesResponse, Topology, TopologyDiff, Window
from otel_ai.analysis.topology.schema import MIGRATIONS
from otel_ai.storage import Storage
from otel_ai.timeutil import rfc3339

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
# Minutes listed by value in one query at most (the rest of a window is given as ranges).
MAX_LIVE_MINUTES = 300


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def ceil_minute(t: datetime) -> datetime:
    f = floor_minute(t)
    return f if f == t else f + MINUTE


def _naive(t: datetime) -> datetime:
    """clickhouse-connect binds naive datetimes as UTC wall time."""
    return t.astimezone(UTC).replace(tzinfo=None)


class TopologyService:
    """Topology discovery for any window; a scheduled rollup and snapshot job (docs/decisions/0006-topology-in-sql.md)."""

    def __init__(self, storage: Storage, config: TopologyConfig, registry: CollectorRegistry) -> None:
        self.storage = storage
        self.config = config
        self.edge_settings = q.edge_settings(config.join_memory_mib)
        self._lock = threading.Lock()  # one rollup at a time
        self._closed = False
        self._started = False
        self.ingest = SpanIngest(storage, config.ingest_batch_rows, config.ingest_max_lag_s)
        self._sql = _QUERIES["job"]
        self._query_seconds = Histogram(
            "otel_ai_topology_query_seconds", "Topology query time", ["query"], registry=registry
        )
        self._rolled = Counter(
            "otel_ai_topology_rollup_minutes", "Minutes (re)computed by the edge rollup", registry=registry
        )
        self._ingested = Counter(
            "otel_ai_topology_ingest_spans",
            "Spans copied into the span index and per-minute tables by the ingest job",
            registry=registry,
        )
        self._job_errors = Counter(
            "otel_ai_topology_job_errors", "Failed topology jobs", ["job"], registry=registry
        )
        Gauge(
            "otel_ai_topology_ingest_deferred_runs",
            "Span ingest runs skipped while the pipeline had a backlog (topology.ingest_max_lag_s)",
            registry=registry,
        ).set_function(lambda: self.ingest.deferred_runs)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Apply the migrations (idempotent; the daemon calls this before its pipeline starts)."""
        if self._started:
            return
        self.storage.apply_migrations("topology", MIGRATIONS)
        self._sql = _QUERIES[self.ingest.state().mode]
        self._started = True

    def shutdown(self) -> None:
        self._closed = True

    def yield_to_ingest(self, pressure: Callable[[], bool]) -> None:
        """Let the span ingest job wait (``ingest_max_lag_s`` at most) while ``pressure()`` says a
        batch waits to be inserted (the daemon passes its pipeline's backlog test)."""
        self.ingest.pressure = pressure

    def register_jobs(self, scheduler: Any) -> None:
        jobs = [
            ("ingest", lambda: self._ingested.inc(self.ingest.run_when_due()), self.config.ingest_interval_s),
            ("snapshot", self.snapshot, self.config.snapshot_interval_s),
        ]
        if self.config.rollup_enabled:
            jobs.append(("rollup", self.rollup, self.config.rollup_interval_s))
        for name, fn, seconds in jobs:
            scheduler.add_job(
                self._job(name, fn),
                "interval",
                seconds=seconds,
                id=f"topology.{name}",
                max_instances=1,
                coalesce=True,
                replace_existing=True,
            )

    def _job(self, name: str, fn: Any) -> Any:
        def run() -> None:
            if self._closed:
                return
            try:
                fn()
            except Exception:
                self._job_errors.labels(name).inc()
                log.exception("topology %s job failed", name)

        return run

    # -- parameters -----------------------------------------------------------------------------
    def _params(self, start: datetime, end: datetime, state: IngestState | None = None) -> dict[str, Any]:
        """Parameters of the live form: the whole window is counted."""
        margin = timedelta(seconds=self.config.pair_margin_s)
        first, last = ceil_minute(start), floor_minute(end)
        whole = last > first  # node figures: whole minutes from the per-minute tables
        return {
            "db": self.storage.database,
            "start": _naive(start),
            "end": _naive(end),
            "n_start": _naive(start),
            "n_end": _naive(end),
            "pair_start": _naive(start - margin),
            "child_end": _naive(end + margin),
            "head_end": _naive(end),
            "head_child_end": _naive(end + margin),
            "tail_start": _naive(end),
            "tail_pair_start": _naive(end),
            "minutes": [],
            "pair_minutes": [],
            "child_minutes": [],
            "r_lo": _naive(end),  # rolled-up minutes: [r_lo, r_hi) minus the listed ones
            "r_hi": _naive(end),
            "mv_lo": _naive(first if whole else end),
            "mv_hi": _naive(last if whole else end),
            "top": self.config.top_operations,
            "wm": (state or self.ingest.state()).watermark,
        }

    def _minute_counts(self, lo: datetime, hi: datetime, wm: int) -> dict[datetime, int]:
        rows = self.storage.query(
            self._sql["minute_counts"], {"db": self.storage.database, "lo": lo, "hi": hi, "wm": wm}
        )
        return {_utc(r[0]): int(r[1]) for r in rows}

    def _plan(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Split ``[start, end)`` into rolled-up minutes and the part to compute live."""
        params = self._params(start, end)
        first, last = ceil_minute(start), floor_minute(end)
        if not self.config.rollup_enabled or last <= first:
            return params
        counts = self._minute_counts(_naive(first - MINUTE), _naive(last + MINUTE), params["wm"])
        seen_rows = self.storage.query(
            q.ROLLUP_SEEN_SQL, {"db": self.storage.database, "lo": _naive(first), "hi": _naive(last)}
        )
        seen = {_utc(r[0]): int(r[1]) for r in seen_rows}
        rolled: list[datetime] = []
        dirty: list[datetime] = []
        m = first
        while m < last:
            if counts.get(m, 0):
                (rolled if seen.get(m) == _expected(counts, m) else dirty).append(m)
            elif m in seen:  # rolled once, its spans since expired: read nothing of it
                dirty.append(m)
            m += MINUTE
        if not rolled or len(dirty) > MAX_LIVE_MINUTES:
            return params  # nothing rolled up, or so little that the whole window is cheaper live
        if not dirty and first == start and last == end:
            # Every minute is rolled up: the live part is empty, so give it an empty range.
            e = _naive(end)
            params.update(start=e, pair_start=e, child_end=e, head_child_end=e, r_lo=_naive(first), r_hi=e)
            return params
        margin = timedelta(seconds=self.config.pair_margin_s)
        params.update(
            head_end=_naive(first),
            head_child_end=_naive(first + margin),
            tail_start=_naive(last),
            tail_pair_start=_naive(last - margin),
            **_minute_sets(dirty),
            r_lo=_naive(first),
            r_hi=_naive(last),
        )
        return params

    # -- queries --------------------------------------------------------------------------------
    def covered(self, start: datetime, end: datetime) -> tuple[datetime, float]:
        """The part of ``[start, end)`` that data covers: from its first span to ``min(end, now)``.

        Rates divide by these seconds, not the whole window: 35 s into a demo, a one-hour window
        holds 35 s of traffic, and dividing by 3600 s would show 1/100 of the real rate.
        """
        hi = min(end, datetime.now(UTC))
        rows = self.storage.query(
            self._sql["covered"],
            {
                "db": self.storage.database,
                "lo": _naive(start),
                "hi": _naive(end),
                "wm": self.ingest.state().watermark,
            },
        )
        first = _utc(rows[0][0]) if rows and rows[0][0] is not None else None
        lo = first if first is not None and start <= first < hi else start
        return lo, max(1.0, (hi - lo).total_seconds())

    def topology(self, start: datetime, end: datetime) -> Topology:
        covered_start, seconds = self.covered(start, end)
        t0 = time.perf_counter()
        params = self._plan(start, end)
        edge_rows = self.storage.query_dicts(self._sql["edges"], params, settings=self.edge_settings)
        self._query_seconds.labels("edges").observe(time.perf_counter() - t0)
        t1 = time.perf_counter()
        node_rows, op_rows, ingest_rows = self._node_figures(start, end)
        self._query_seconds.labels("nodes").observe(time.perf_counter() - t1)
        edges, per_target = build_edges(edge_rows, seconds)
        nodes = build_nodes(node_rows, op_rows, ingest_rows, edges, per_target, seconds)
        return Topology(window=_window(start, end, covered_start, seconds), nodes=nodes, edges=edges)

    def services(self, start: datetime, end: datetime) -> ServicesResponse:
        covered_start, seconds = self.covered(start, end)
        t0 = time.perf_counter()
        node_rows, op_rows, ingest_rows = self._node_figures(start, end)
        self._query_seconds.labels("services").observe(time.perf_counter() - t0)
        return ServicesResponse(
            window=_window(start, end, covered_start, seconds),
            services=build_services(node_rows, op_rows, ingest_rows, seconds),
        )

    def _node_figures(self, start: datetime, end: datetime) -> tuple[Rows, Rows, Rows]:
        """Node, operation and ingest rows: whole minutes from the per-minute tables, the rest live.

        The per-minute tables hold aggregates, not rows tagged with their block, so a reader must
        not overlap a batch of the ingest job: it runs when none is being written and checks that
        none was committed meanwhile (a few tries), else it computes the window from otel_traces.
        """
        for _ in range(3):
            state = self.ingest.settled()
            if state is None:
                break
            params = self._params(start, end, state)
            out = self._node_rows(params)
            if self.ingest.state() == state:
                return out
        params = self._params(start, end)
        params["mv_lo"] = params["mv_hi"] = params["end"]  # all live: exact whatever the job does
        return self._node_rows(params)

    def _node_rows(self, params: dict[str, Any]) -> tuple[Rows, Rows, Rows]:
        nodes, ops = self._nodes(params)
        return nodes, ops, self.storage.query_dicts(self._sql["ingest"], params)

    def _nodes(self, params: dict[str, Any]) -> tuple[Rows, Rows]:
        """Per-service rows and the top ``top_operations`` operation rows of each service."""
        nodes: Rows = []
        ops: Rows = []
        taken: dict[str, int] = {}
        for r in self.storage.query_dicts(self._sql["nodes"], params):  # ordered: service, then ops by count
            if r["per_service"]:
                nodes.append({**r, "name": r["service"]})
            elif taken.get(r["service"], 0) < self.config.top_operations:
                taken[r["service"]] = taken.get(r["service"], 0) + 1
                ops.append({**r, "q": r["all_q"]})
        return nodes, ops

    def diff(self, a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> TopologyDiff:
        """What changed from window ``a`` to window ``b``: nodes, edges, latency and error rates."""
        return diff_topologies(
            self.topology(*a),
            self.topology(*b),
            latency_ratio=self.config.diff_latency_ratio,
            error_rate_delta=self.config.diff_error_rate_delta,
        )

    # -- rollup ---------------------------------------------------------------------------------
    def rollup(self, now: datetime | None = None) -> int:
        """Recompute the newest minutes whose span count changed since they were rolled up."""
        now = now or datetime.now(UTC)
        hi = floor_minute(now - timedelta(seconds=self.config.rollup_settle_s))
        lo = floor_minute(now - timedelta(seconds=self.config.rollup_horizon_s))
        with self._lock:
            wm = self.ingest.state().watermark
            counts = self._minute_counts(_naive(lo - MINUTE), _naive(hi + MINUTE), wm)
            seen_rows = self.storage.query(
                q.ROLLUP_SEEN_SQL, {"db": self.storage.database, "lo": _naive(lo), "hi": _naive(hi)}
            )
            seen = {_utc(r[0]): int(r[1]) for r in seen_rows}
            todo = []
            for m in sorted((m for m in counts if lo <= m < hi), reverse=True):
                expected = _expected(counts, m)
                if seen.get(m) != expected:
                    todo.append((m, expected))
                if len(todo) >= self.config.rollup_batch_minutes:
                    break
            if not todo:
                return 0
            self._rollup_minutes(todo, wm)
            self._rolled.inc(len(todo))
            return len(todo)

    def _rollup_minutes(self, todo: list[tuple[datetime, int]], wm: int) -> None:
        minutes = sorted(m for m, _ in todo)
        start, end = minutes[0], minutes[-1] + MINUTE
        version = time.time_ns()
        params = self._params(start, end)
        params["wm"] = wm  # the watermark the counts were taken at
        params.update(
            head_end=_naive(start),  # nothing counted by position: only the listed minutes
            head_child_end=_naive(start),
            tail_start=_naive(end),
            **_minute_sets(minutes),
            version=version,
        )
        # Edge partials first, then the rows that make them visible (a crash in between leaves
        # an unreferenced version, never a half-visible one).
        self.storage.command(self._sql["edges_by_minute"], params, settings=self.edge_settings)
        self.storage.insert(
            "otel_ai_topology_rollup",
            [[_naive(m), version, seen] for m, seen in todo],
            ["minute", "version", "seen"],
        )

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self, now: datetime | None = None) -> Topology:
        """Store the topology of the last ``snapshot_window_s`` ending at the last closed minute."""
        end = floor_minute(now or datetime.now(UTC))
        start = end - timedelta(seconds=self.config.snapshot_window_s)
        topo = self.topology(start, end)
        self.storage.insert(
            "otel_ai_topology",
            [[_naive(now or datetime.now(UTC)), _naive(start), _naive(end), len(topo.nodes),
              len(topo.edges), topo.model_dump_json()]],
            ["taken_at", "window_start", "window_end", "node_count", "edge_count", "body"],
        )  # fmt: skip
        return topo

    def snapshot_at(self, at: datetime) -> Topology | None:
        """The stored snapshot taken nearest before (or at) ``at``."""
        rows = self.storage.query(
            "SELECT taken_at, body FROM {db:Identifier}.otel_ai_topology WHERE taken_at <= {at:DateTime64(3)}"
            " ORDER BY taken_at DESC LIMIT 1",
            {"db": self.storage.database, "at": _naive(at)},
        )
        if not rows:
            return None
        topo = Topology.model_validate_json(rows[0][1])
        topo.snapshot_at = rfc3339(_utc(rows[0][0]))
        return topo


Rows = list[dict[str, Any]]
# The SQL of each mode: "job" reads the index up to the watermark plus otel_traces past it.
_QUERIES: dict[str, dict[str, str]] = {
    "job": {
        "edges": q.EDGES_SQL, "edges_by_minute": q.EDGES_BY_MINUTE, "nodes": q.NODES_SQL,
        "ingest": q.INGEST_SQL, "covered": q.COVERED_SQL, "minute_counts": q.MINUTE_COUNTS_SQL,
    },
    "views": {
        "edges": q.EDGES_SQL_VIEWS, "edges_by_minute": q.EDGES_BY_MINUTE_VIEWS, "nodes": q.NODES_SQL_VIEWS,
        "ingest": q.INGEST_SQL_VIEWS, "covered": q.COVERED_SQL_VIEWS, "minute_counts": q.MINUTE_COUNTS_SQL_VIEWS,
    },
}  # fmt: skip


def _expected(counts: dict[datetime, int], m: datetime) -> int:
    """What a rollup of minute ``m`` depends on: its spans and its neighbours' (pairing margins)."""
    return counts.get(m - MINUTE, 0) + counts.get(m, 0) + counts.get(m + MINUTE, 0)


def _minute_sets(minutes: list[datetime]) -> dict[str, list[datetime]]:
    """Counted minutes, where their parents may be (one earlier), where their children may be."""
    return {
        "minutes": [_naive(m) for m in minutes],
        "pair_minutes": [_naive(m) for m in sorted(set(minutes) | {m - MINUTE for m in minutes})],
        "child_minutes": [_naive(m) for m in sorted(set(minutes) | {m + MINUTE for m in minutes})],
    }


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _window(
    start: datetime, end: datetime, covered_start: datetime | None = None, covered_s: float | None = None
) -> Window:
    covered = rfc3339(covered_start) if covered_start is not None else None
    return Window(start=rfc3339(start), end=rfc3339(end), covered_start=covered, covered_seconds=covered_s)


def build_topology_service(
    storage: Storage, config: TopologyConfig, registry: CollectorRegistry
) -> TopologyService:
    return TopologyService(storage, config, registry)
