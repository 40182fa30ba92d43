"""``GET /api/v1/services/{name}/overview``: what the web UI's service panel shows beside RED totals.

RED time series (requests, errors, p95 of the service's entry spans per bucket, and the spans per
ingest encoding per bucket, so the protobuf/JSON switch shows as it happens), and the resources
the service reports: instances, versions and SDKs. One pass per question, over the service's
rows only (``ServiceName`` leads the table's primary key).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from otel_ai.analysis.topology.queries import ENTRY
from otel_ai.api.params import time_window
from otel_ai.api.routes_traces import _text
from otel_ai.errors import InvalidParameter, NotFound
from otel_ai.timeutil import rfc3339

router = APIRouter(tags=["topology"])

DEFAULT_BUCKETS, MAX_BUCKETS = 60, 500
MAX_RESOURCE_ROWS = 500
_WINDOW = "Timestamp >= {start:DateTime64(9)} AND Timestamp < {end:DateTime64(9)}"

SERIES_SQL = f"""
SELECT
    intDiv(toUnixTimestamp(Timestamp) - {{t0:Int64}}, {{step:UInt32}}) AS b,
    countIf({ENTRY}) AS requests,
    countIf({ENTRY} AND StatusCode = 'Error') AS errors,
    quantileIf(0.95)(Duration, {ENTRY}) AS p95_ns,
    countIf(IngestEncoding = 'protobuf') AS protobuf,
    countIf(IngestEncoding = 'json') AS json,
    count() AS spans
FROM {{db:Identifier}}.otel_traces
PREWHERE ServiceName = {{service:String}} AND {_WINDOW}
GROUP BY b ORDER BY b
"""

RESOURCES_SQL = f"""
SELECT
    ResourceAttributes['service.instance.id'] AS instance,
    ResourceAttributes['host.name'] AS host,
    ResourceAttributes['service.version'] AS version,
    ResourceAttributes['telemetry.sdk.language'] AS language,
    ResourceAttributes['telemetry.sdk.name'] AS sdk,
    ResourceAttributes['telemetry.sdk.version'] AS sdk_version,
    count() AS spans,
    toUnixTimestamp64Milli(max(Timestamp)) AS last_ms
FROM {{db:Identifier}}.otel_traces
PREWHERE ServiceName = {{service:String}} AND {_WINDOW}
GROUP BY instance, host, version, language, sdk, sdk_version
ORDER BY spans DESC
LIMIT {MAX_RESOURCE_ROWS}
"""


class Bucket(BaseModel):
    time: str
    requests: int
    errors: int
    p95_ms: float | None
    spans: int
    encodings: dict[str, int]


class Instance(BaseModel):
    id: str
    host: str
    version: str
    spans: int
    last_seen: str


class Version(BaseModel):
    version: str
    spans: int


class Sdk(BaseModel):
    language: str
    name: str
    version: str
    spans: int


class ServiceOverview(BaseModel):
    name: str
    window: dict[str, str]
    step_s: int
    series: list[Bucket]
    encodings: dict[str, int]
    instances: list[Instance]
    versions: list[Version]
    sdks: list[Sdk]


def _buckets(value: str | None) -> int:
    if value is None:
        return DEFAULT_BUCKETS
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter("buckets", f"expected an integer, got {value!r}") from None
    if not 1 <= n <= MAX_BUCKETS:
        raise InvalidParameter("buckets", f"must be between 1 and {MAX_BUCKETS}, got {n}")
    return n


def _series(rows: list[tuple[Any, ...]], t0: int, step: int, n: int) -> list[Bucket]:
    """Every bucket of the window, empty ones included, so sparklines keep their time axis."""
    by_b = {int(r[0]): r for r in rows}
    out = []
    for b in range(n):
        r = by_b.get(b)
        when = rfc3339(datetime.fromtimestamp(t0 + b * step, UTC))
        if r is None:
            out.append(Bucket(time=when, requests=0, errors=0, p95_ms=None, spans=0,
                              encodings={"protobuf": 0, "json": 0}))  # fmt: skip
            continue
        _, req, err, p95, pb, js, spans = r
        p95_ms = round(float(p95) / 1e6, 3) if int(req) and p95 == p95 else None
        out.append(Bucket(time=when, requests=int(req), errors=int(err), p95_ms=p95_ms, spans=int(spans),
                          encodings={"protobuf": int(pb), "json": int(js)}))  # fmt: skip
    return out


def _resources(rows: list[tuple[Any, ...]]) -> tuple[list[Instance], list[Version], list[Sdk]]:
    instances: dict[str, Instance] = {}
    versions: dict[str, int] = {}
    sdks: dict[tuple[str, str, str], int] = {}
    for inst, host, ver, lang, sdk, sdk_ver, spans, last_ms in rows:
        key = str(inst or host or "(unnamed)")
        seen = rfc3339(datetime.fromtimestamp(int(last_ms) / 1000, UTC))
        cur = instances.get(key)
        if cur is None:
            instances[key] = Instance(
                id=key, host=str(host), version=str(ver), spans=int(spans), last_seen=seen
            )
        else:
            cur.spans += int(spans)
            cur.last_seen = max(cur.last_seen, seen)
        versions[str(ver)] = versions.get(str(ver), 0) + int(spans)
        k = (str(lang), str(sdk), str(sdk_ver))
        sdks[k] = sdks.get(k, 0) + int(spans)
    return (
        sorted(instances.values(), key=lambda i: -i.spans),
        [Version(version=v, spans=n) for v, n in sorted(versions.items(), key=lambda x: -x[1])],
        [
            Sdk(language=k[0], name=k[1], version=k[2], spans=n)
            for k, n in sorted(sdks.items(), key=lambda x: -x[1])
        ],
    )


@router.get(
    "/services/{name}/overview",
    response_model=ServiceOverview,
    summary="RED and encoding time series, instances, versions and SDKs of one service",
)
def get_service_overview(
    request: Request,
    name: str,
    since: str | None = Query(None, description="window start: RFC 3339 or a duration (15m); default 1h"),
    until: str | None = Query(None, description="window end (exclusive); default now"),
    buckets: str | None = Query(
        None, description=f"time buckets (default {DEFAULT_BUCKETS}, max {MAX_BUCKETS})"
    ),
) -> ServiceOverview:
    ctx = request.app.state.ctx
    service = _text("name", name)
    assert service is not None
    start, end = time_window(since, until, max_days=ctx.config.api.max_window_days)
    n = _buckets(buckets)
    t0 = int(start.timestamp())
    step = max(1, -(-(int(end.timestamp()) - t0) // n))
    n = -(-(int(end.timestamp()) - t0) // step)
    params: dict[str, Any] = {"db": ctx.storage.database, "service": service, "t0": t0, "step": step,
                              "start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)}  # fmt: skip
    rows = ctx.storage.query(SERIES_SQL, params)
    if not rows:
        raise NotFound(f"service {service!r} sent no spans between {rfc3339(start)} and {rfc3339(end)}")
    series = _series(rows, t0, step, max(n, 1))
    instances, versions, sdks = _resources(ctx.storage.query(RESOURCES_SQL, params))
    return ServiceOverview(
        name=service,
        window={"start": rfc3339(start), "end": rfc3339(end)},
        step_s=step,
        series=series,
        encodings={
            "protobuf": sum(b.encodings["protobuf"] for b in series),
            "json": sum(b.encodings["json"] for b in series),
        },
        instances=instances,
        versions=versions,
        sdks=sdks,
    )
