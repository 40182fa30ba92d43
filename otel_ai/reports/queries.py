"""SQL over stored spans for a report: each query reads the window and its comparison period at once.

``cur`` is 1 for rows of the window ``[start, end)`` and 0 for the comparison period
``[prev_start, start)``. Requests are entry spans (server/consumer spans and roots), as in the
topology; errors are entry spans with status Error.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from otel_ai.storage import Storage

ENTRY = "(SpanKind IN ('Server', 'Consumer', 'SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER') OR ParentSpanId = '')"
ERROR = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
_RANGE = "Timestamp >= {ps:DateTime64(9)} AND Timestamp < {e:DateTime64(9)}"
_CUR = "Timestamp >= {s:DateTime64(9)}"

SERVICES_SQL = f"""
SELECT ServiceName AS service, toUInt8({_CUR}) AS cur, count() AS spans,
       countIf({ENTRY}) AS requests, countIf({ENTRY} AND {ERROR}) AS errors,
       quantilesIf(0.5, 0.95, 0.99)(Duration, {ENTRY}) AS q
FROM {{db:Identifier}}.otel_traces
WHERE {_RANGE}
GROUP BY service, cur
"""

SERIES_SQL = f"""
SELECT ServiceName AS service,
       intDiv(toUnixTimestamp64Milli(Timestamp) - {{p0:Int64}}, {{bms:Int64}}) AS i,
       countIf({ENTRY}) AS requests, countIf({ENTRY} AND {ERROR}) AS errors,
       quantileIf(0.95)(Duration, {ENTRY}) AS p95
FROM {{db:Identifier}}.otel_traces
WHERE {_RANGE} AND ServiceName IN {{svcs:Array(String)}}
GROUP BY service, i
"""

INGEST_SQL = f"""
SELECT IngestEncoding AS encoding, IngestTransport AS transport, toUInt8({_CUR}) AS cur, count() AS spans
FROM {{db:Identifier}}.otel_traces
WHERE {_RANGE}
GROUP BY encoding, transport, cur
"""

VERSIONS_SQL = f"""
SELECT ServiceName AS service, ResourceAttributes['service.version'] AS version, toUInt8({_CUR}) AS cur,
       min(Timestamp) AS first_seen, count() AS spans
FROM {{db:Identifier}}.otel_traces
WHERE {_RANGE}
GROUP BY service, version, cur
"""

LLM_SQL = """
SELECT Provider AS provider, Model AS model, count() AS calls, countIf(Ok = 0) AS errors,
       countIf(Cached = 1) AS cache_hits, sum(InputTokens) AS input_tokens,
       sum(OutputTokens) AS output_tokens, sum(CostUSD) AS cost_usd
FROM {db:Identifier}.otel_ai_llm_calls
WHERE Timestamp >= {s:DateTime64(3)} AND Timestamp < {e:DateTime64(3)}
GROUP BY provider, model ORDER BY cost_usd DESC, calls DESC
"""


def naive(t: datetime) -> datetime:
    """clickhouse-connect binds naive datetimes as UTC wall time."""
    return t.astimezone(UTC).replace(tzinfo=None)


def num(v: Any) -> float | None:
    """A finite float, or ``None`` (empty quantiles come back as NaN)."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


class ReportQueries:
    """The named queries of one report window (``[start, end)``, compared with the one before)."""

    def __init__(self, storage: Storage, start: datetime, end: datetime) -> None:
        self.storage = storage
        self.start, self.end = start, end
        self.prev_start = start - (end - start)
        self.params: dict[str, Any] = {
            "db": storage.database, "ps": naive(self.prev_start), "s": naive(start), "e": naive(end),
        }  # fmt: skip

    def services(self) -> list[dict[str, Any]]:
        return self.storage.query_dicts(SERVICES_SQL, self.params)

    def series(self, services: list[str], bucket_s: int) -> list[dict[str, Any]]:
        if not services:
            return []
        p0 = int(self.prev_start.timestamp() * 1000)
        params = {**self.params, "p0": p0, "bms": bucket_s * 1000, "svcs": services}
        return self.storage.query_dicts(SERIES_SQL, params)

    def ingest(self) -> list[dict[str, Any]]:
        return self.storage.query_dicts(INGEST_SQL, self.params)

    def versions(self) -> list[dict[str, Any]]:
        return self.storage.query_dicts(VERSIONS_SQL, self.params)

    def llm(self) -> list[dict[str, Any]]:
        return self.storage.query_dicts(LLM_SQL, self.params)
