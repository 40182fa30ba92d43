"""The span ingest job: the topology's per-span index and per-minute tables, filled off the insert path.

Until migration 3, materialized views on ``otel_traces`` wrote the span index and the two
per-minute tables inside every INSERT (~40 % of the storage engine's insert ceiling). Now a job
copies what arrived since the last run, in one ``INSERT … SELECT`` per table every
``ingest_interval_s`` (docs/decisions/0013-topology-ingest-watermark.md):

- **Watermark = otel_traces block number.** A non-replicated MergeTree numbers each committed
  part from one table-wide counter, under the lock that makes the part visible, so once block
  ``n`` is visible every block below it is visible or never will be. ``enable_block_number_column``
  keeps each row's number (``_block_number``) through merges. A batch is ``(watermark, hi]``
  with ``hi`` the highest committed block: no row is missed, none is read twice.
- **Exactly once across crashes.** The state row says ``pending = hi`` before the batch is
  written and ``watermark = hi, pending = 0`` after. Span index rows carry their source block
  (``blk``), so readers take ``blk <= watermark`` and compute the rest from ``otel_traces``. A run
  that finds ``pending`` set (a crash mid-batch) deletes what the batch may have written and
  recomputes the minutes it touched before moving on.
- **Yields to ingest under pressure.** While the pipeline reports a backlog (``pressure``), a
  scheduled run is skipped unless the previous one is ``max_lag_s`` old: a burst is inserted
  first and copied after it, and under sustained overload the job still runs every
  ``max_lag_s``. The lag costs queries, not figures (they compute the rest from ``otel_traces``).
- **Cluster mode keeps the views**: Replicated tables number blocks per partition through
  Keeper and commit them out of order, so a block watermark would not be exact there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from otel_ai.analysis.topology.queries import FRESH, MINUTE_SPANS_COLS, OPS_COLS, SPAN_INDEX_SELECT
from otel_ai.errors import StorageError
from otel_ai.storage import Storage
from otel_ai.storage.schema import TableSpec

log = logging.getLogger(__name__)

Mode = Literal["job", "views"]

STATE = TableSpec(
    name="otel_ai_topology_ingest",
    columns="""
    id UInt8,
    version UInt64,
    mode LowCardinality(String),
    watermark UInt64,
    pending UInt64,
    updated_at DateTime64(3) DEFAULT now64(3)""",
    engine="ReplacingMergeTree(version)",
    order_by="id",
)
VIEWS = ("otel_ai_topology_spans_mv", "otel_ai_topology_ops_1m_mv", "otel_ai_topology_minute_spans_mv")

_STATE_SQL = """
SELECT argMax(mode, version), argMax(watermark, version), argMax(pending, version), max(version), count()
FROM {db:Identifier}.otel_ai_topology_ingest
"""
_MAX_BLOCK_SQL = """
SELECT max(max_block_number) FROM system.parts
WHERE database = {db:String} AND table = 'otel_traces' AND active
"""
_NEW_PARTS_SQL = """
SELECT max_block_number, rows FROM system.parts
WHERE database = {db:String} AND table = 'otel_traces' AND active AND max_block_number > {wm:UInt64}
ORDER BY max_block_number
"""
_BATCH = FRESH.replace("{wm:UInt64}", "{lo:UInt64}") + " AND _block_number <= {hi:UInt64}"
_INDEX_COLS = "Timestamp, k, pk, lks, svc, kind, dur, err, vid, vkind, conn, dest, blk"
# Client and producer spans are the only ones whose attributes the index needs: reading the
# attribute map for the others would be most of the job's work. Their map is first cut down to
# the keys the peer names read (each lookup scans the map: ~0.5 µs per span saved).
_PEER_KEYS = (
    "peer.service", "db.system", "db.namespace", "db.name", "messaging.system",
    "messaging.destination.name", "server.address", "net.peer.name", "rpc.system",
    "http.request.method", "http.method",
)  # fmt: skip
_CLIENT_ROWS = (
    "SELECT Timestamp, TraceId, SpanId, ParentSpanId, SpanKind, ServiceName, Duration, StatusCode,"
    " `Links.TraceId`, `Links.SpanId`, _block_number AS blk,"
    f" mapFilter((k, v) -> k IN ({', '.join(repr(k) for k in _PEER_KEYS)}), SpanAttributes) AS SpanAttributes"
    f" FROM {{db:Identifier}}.otel_traces PREWHERE {_BATCH} AND SpanKind IN ('Client', 'Producer')"
)
_INDEX_INSERTS = (
    f"INSERT INTO {{db:Identifier}}.otel_ai_topology_spans ({_INDEX_COLS})"
    f" SELECT {SPAN_INDEX_SELECT}, blk FROM ({_CLIENT_ROWS})",
    f"INSERT INTO {{db:Identifier}}.otel_ai_topology_spans ({_INDEX_COLS})"
    " SELECT Timestamp, cityHash64(TraceId, SpanId) AS k,"
    " if(ParentSpanId = '', 0, cityHash64(TraceId, ParentSpanId)) AS pk,"
    " if(SpanKind = 'Consumer', arrayFilter(h -> h != cityHash64(TraceId, ParentSpanId),"
    " arrayMap((t, s) -> cityHash64(t, s), Links.TraceId, Links.SpanId)), []) AS lks,"
    " ServiceName, SpanKind, Duration, StatusCode = 'Error', '', '', '', '', _block_number"
    f" FROM {{db:Identifier}}.otel_traces PREWHERE {_BATCH} AND SpanKind NOT IN ('Client', 'Producer')",
)


def _minute_inserts(where: str) -> tuple[str, str]:
    return (
        f"INSERT INTO {{db:Identifier}}.otel_ai_topology_ops_1m SELECT {OPS_COLS}"
        f" FROM {{db:Identifier}}.otel_traces PREWHERE {where} GROUP BY minute, service, name",
        f"INSERT INTO {{db:Identifier}}.otel_ai_topology_minute_spans SELECT {MINUTE_SPANS_COLS}"
        f" FROM {{db:Identifier}}.otel_traces PREWHERE {where} GROUP BY minute, service, encoding, transport",
    )


_TOUCHED_SQL = (
    "SELECT DISTINCT toStartOfMinute(Timestamp) FROM {db:Identifier}.otel_traces PREWHERE " + _BATCH
)
_MINUTES = "toStartOfMinute(Timestamp) IN {minutes:Array(DateTime)} AND _block_number <= {hi:UInt64}"


@dataclass(frozen=True)
class IngestState:
    """``watermark``: the highest otel_traces block copied; ``pending``: a batch's ``hi`` while
    it is being written (0 = none)."""

    mode: Mode
    watermark: int
    pending: int
    version: int = 0


# What queries use in views mode: every row of the index counts, nothing is read past it.
VIEWS_STATE = IngestState("views", 2**64 - 1, 0)


def read_state(storage: Storage) -> IngestState | None:
    rows = storage.query(_STATE_SQL, {"db": storage.database})
    if not rows or not rows[0][4]:
        return None
    mode, wm, pending, version, _ = rows[0]
    return IngestState("views" if mode == "views" else "job", int(wm), int(pending), int(version))


def _write_state(storage: Storage, state: IngestState) -> IngestState:
    version = max(time.time_ns(), state.version + 1)
    storage.insert(
        STATE.name,
        [[0, version, state.mode, state.watermark, state.pending]],
        ["id", "version", "mode", "watermark", "pending"],
    )
    return IngestState(state.mode, state.watermark, state.pending, version)


def adopt(storage: Storage) -> None:
    """Migration 3's step: drop the insert-time views and start the watermark where they stopped.

    Runs before the pipeline inserts anything (the daemon applies the topology migrations
    first), so every row up to the highest block now was counted by the views, and every row
    after it will be by the job. Idempotent: a crash before the state row is written runs it
    again. In cluster mode (or on a server without per-row block numbers) the views stay.
    """
    if read_state(storage) is not None:
        return
    db = f"`{storage.database}`"
    mode: Mode = "job"
    if storage.ctx.cluster:
        mode = "views"
    else:
        try:
            storage.command(f"ALTER TABLE {db}.otel_traces MODIFY SETTING enable_block_number_column = 1")
        except StorageError as exc:
            log.warning(
                "topology: per-row block numbers unavailable (%s); keeping the insert-time views", exc
            )
            mode = "views"
    if mode == "job":
        storage.command(f"ALTER TABLE {db}.otel_ai_topology_spans ADD COLUMN IF NOT EXISTS blk UInt64")
        for view in VIEWS:
            storage.command(f"DROP VIEW IF EXISTS {db}.`{view}`")
    rows = storage.query(_MAX_BLOCK_SQL, {"db": storage.database})
    watermark = int(rows[0][0] or 0) if rows else 0
    _write_state(storage, IngestState(mode, watermark, 0))
    log.info("topology: span ingest %s, watermark at block %d", mode, watermark)


class SpanIngest:
    """Runs the batches: ``run()`` copies what arrived since the watermark and returns its rows."""

    def __init__(self, storage: Storage, batch_rows: int, max_lag_s: float = 0.0) -> None:
        self.storage = storage
        self.batch_rows = batch_rows
        self.max_lag_s = max_lag_s
        self.settle_timeout_s = 2.0  # how long a reader waits for a batch being written
        self.pressure: Callable[[], bool] = lambda: False  # the pipeline's "a batch is waiting"
        self.deferred_runs = 0
        self._last_run = time.monotonic()
        self._lock = threading.Lock()  # one batch at a time

    def run_when_due(self) -> int:
        """The scheduled run: :meth:`run`, unless ingest is under pressure and the previous run is
        less than ``max_lag_s`` old (then 0 rows, and the run is counted as deferred)."""
        if self.max_lag_s and time.monotonic() - self._last_run < self.max_lag_s and self.pressure():
            self.deferred_runs += 1
            return 0
        return self.run()

    def state(self) -> IngestState:
        return read_state(self.storage) or VIEWS_STATE

    def settled(self) -> IngestState | None:
        """The state once no batch is being written (``None`` if one still is after the timeout)."""
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            st = self.state()
            if not st.pending:
                return st
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def run(self) -> int:
        with self._lock:
            self._last_run = time.monotonic()
            st = self.state()
            if st.mode != "job":
                return 0
            if st.pending:
                st = self._recover(st)
            hi, rows = self._next_hi(st.watermark)
            if hi <= st.watermark:
                return 0
            st = _write_state(self.storage, IngestState("job", st.watermark, hi, st.version))
            params = {"db": self.storage.database, "lo": st.watermark, "hi": hi}
            for sql in (*_INDEX_INSERTS, *_minute_inserts(_BATCH)):
                self.storage.command(sql, params)
            _write_state(self.storage, IngestState("job", hi, 0, st.version))
            return rows

    def _next_hi(self, watermark: int) -> tuple[int, int]:
        """The batch's upper block: all committed parts past the watermark, up to ~``batch_rows``."""
        parts = self.storage.query(_NEW_PARTS_SQL, {"db": self.storage.database, "wm": watermark})
        hi, rows = watermark, 0
        for max_block, n in parts:
            hi, rows = int(max_block), rows + int(n)
            if rows >= self.batch_rows:
                break
        return hi, rows

    def _recover(self, st: IngestState) -> IngestState:
        """A batch ``(watermark, pending]`` was cut short: undo what it may have written, redo it.

        Span index rows are known by ``blk``; the per-minute tables hold merged aggregates, so
        the minutes the batch touched are deleted and recomputed from every row up to
        ``pending``. Idempotent: a crash in here leaves ``pending`` set and the next run redoes it.
        """
        db = self.storage.database
        params: dict[str, Any] = {"db": db, "lo": st.watermark, "hi": st.pending}
        minutes: list[datetime] = [r[0] for r in self.storage.query(_TOUCHED_SQL, params)]
        log.warning(
            "topology: redoing span ingest batch (%d, %d] left by a crash (%d minutes)",
            st.watermark, st.pending, len(minutes),
        )  # fmt: skip
        self.storage.command(
            "DELETE FROM {db:Identifier}.otel_ai_topology_spans WHERE blk > {lo:UInt64}", params
        )
        if minutes:
            params["minutes"] = minutes
            for table in ("otel_ai_topology_ops_1m", "otel_ai_topology_minute_spans"):
                self.storage.command(
                    f"DELETE FROM {{db:Identifier}}.{table} WHERE minute IN {{minutes:Array(DateTime)}}",
                    params,
                )
            for sql in _minute_inserts(_MINUTES):
                self.storage.command(sql, params)
        for sql in _INDEX_INSERTS:
            self.storage.command(sql, params)
        return _write_state(self.storage, IngestState("job", st.pending, 0, st.version))
