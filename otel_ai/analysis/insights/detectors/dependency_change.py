"""Edges that appear or disappear, shared by ``new_dependency`` and ``vanished_dependency``.

Two comparisons, the deploy first:

- inside the window, before vs after a ``service.version`` change of the caller: an edge only
  the new version calls is new, one only the old versions called has vanished
  (``change_type: deploy``, the version change as evidence);
- the window against the previous period of the same length: an edge with calls now and none
  then is new, one with calls then and none now has vanished (``change_type: dependency``).

With no earlier data to compare against (the caller sent fewer than ``min_compare_spans`` spans
in the comparison period, or nothing was stored then) nothing is new and nothing has vanished.
Edges are named as the topology names them: caller → child service, or → the virtual peer when
no instrumented child exists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from otel_ai.analysis.insights.detectors.common import (
    VIRTUAL_ID,
    VIRTUAL_KIND,
    edge,
    evidence,
    key_of,
    naive,
    node,
    recommend,
)
from otel_ai.analysis.insights.detectors.config import DependencyChangeConfig
from otel_ai.analysis.insights.detectors.resources import resources
from otel_ai.analysis.insights.model import (
    DetectContext,
    Evidence,
    Finding,
    Impact,
    Kind,
    RootCause,
)

_EDGES = """
SELECT p.svc AS source, {version} AS version, if(c.pk = 0, p.vid, c.csvc) AS target,
       if(c.pk = 0, p.vkind, 'service') AS target_kind, p.t >= {{start:DateTime64(9)}} AS cur,
       count() AS calls, uniq(p.tid) AS traces, min(p.t) AS first, max(p.t) AS last,
       arraySort(groupUniqArray(5)(p.tid)) AS examples
FROM (
    SELECT cityHash64(TraceId, SpanId) AS k, ServiceName AS svc, {version_col} AS ver,
           {vid} AS vid, {vkind} AS vkind, Timestamp AS t, TraceId AS tid
    FROM {{db:Identifier}}.otel_traces
    PREWHERE Timestamp >= {{p_start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}}
      AND SpanKind IN ('Client', 'Producer'){callers}
) AS p
LEFT JOIN (
    SELECT cityHash64(TraceId, ParentSpanId) AS pk, ServiceName AS csvc
    FROM {{db:Identifier}}.otel_traces
    PREWHERE Timestamp >= {{p_start:DateTime64(9)}} AND Timestamp < {{c_end:DateTime64(9)}}
      AND SpanKind IN ('Server', 'Consumer') AND ParentSpanId != ''
) AS c ON p.k = c.pk
WHERE (c.pk != 0 AND c.csvc != p.svc) OR (c.pk = 0 AND p.vid != '')
GROUP BY source, version, target, target_kind, cur
SETTINGS join_use_nulls = 0
"""
# Every edge per period; per caller version only for the callers that changed version (reading
# the version means reading ResourceAttributes, so only their spans pay for it).
EDGES_SQL = _EDGES.format(version="''", version_col="''", vid=VIRTUAL_ID, vkind=VIRTUAL_KIND, callers="")
DEPLOY_EDGES_SQL = _EDGES.format(
    version="p.ver",
    version_col="ResourceAttributes['service.version']",
    vid=VIRTUAL_ID,
    vkind=VIRTUAL_KIND,
    callers=" AND ServiceName IN {callers:Array(String)}",
)
PREVIOUS_SQL = """
SELECT ServiceName, count() AS spans, uniq(TraceId) AS traces FROM {db:Identifier}.otel_traces
PREWHERE Timestamp >= {p_start:DateTime64(9)} AND Timestamp < {start:DateTime64(9)}
GROUP BY ServiceName
"""

Change = Literal["new", "vanished"]


@dataclass
class _Side:
    calls: int = 0
    traces: int = 0
    first: datetime | None = None
    last: datetime | None = None
    examples: list[str] = field(default_factory=list)

    def add(self, calls: int, traces: int, first: datetime, last: datetime, examples: list[str]) -> None:
        self.calls += calls
        self.traces += traces
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)
        self.examples = sorted(set(self.examples) | set(examples))[:5]


@dataclass(frozen=True)
class EdgeChange:
    change: Change
    source: str
    target: str
    target_kind: str
    before: _Side
    after: _Side
    caller_before: int  # caller spans on the side without the edge ... and with it
    caller_after: int
    caller_traces: int
    deploy: tuple[str, str, datetime] | None  # (old version, new version, change time)


def changes(ctx: DetectContext, cfg: DependencyChangeConfig) -> list[EdgeChange]:
    """Every new and vanished edge of the window (computed once per run and config)."""
    cache_key = f"edge_changes:{cfg.min_calls}:{cfg.min_compare_spans}"
    cached = ctx.cache.get(cache_key)
    if isinstance(cached, list):
        return cached
    w, prev = ctx.window, ctx.previous
    p = {"db": ctx.storage.database, "start": naive(w.start), "end": naive(w.end),
         "p_start": naive(prev.start), "c_end": naive(w.end + timedelta(seconds=30))}  # fmt: skip
    res = resources(ctx)
    previous = {str(r[0]): (int(r[1]), int(r[2])) for r in ctx.storage.query(PREVIOUS_SQL, p)}
    versions = {
        svc: rows
        for svc, rows in res.variants("version").items()
        if len([r for r in rows if r["variant"]]) >= 2
    }
    out: list[EdgeChange] = []
    if versions:
        deploy_edges = ctx.storage.query_dicts(DEPLOY_EDGES_SQL, {**p, "callers": sorted(versions)})
        out = _deploys(deploy_edges, versions, previous, cfg)
    seen = {(c.source, c.target) for c in out}
    edges = ctx.storage.query_dicts(EDGES_SQL, p)
    current = {svc: (int(r["spans"]), int(r["traces"])) for svc, r in res.services.items()}
    out += [c for c in _periods(edges, current, previous, cfg) if (c.source, c.target) not in seen]
    ctx.cache[cache_key] = out
    return out


def _unlikely(calls: int, spans_with: int, spans_without: int, cfg: DependencyChangeConfig) -> bool:
    """Whether ``calls`` on one side and none on the other is unlikely at one rate per caller span
    (``max_chance``): a quiet edge of a busy caller can miss a period by chance."""
    q = spans_with / max(1, spans_with + spans_without)
    return bool(q**calls < cfg.max_chance)


def _deploys(
    edges: list[dict[str, Any]], versions: dict[str, list[dict[str, Any]]],
    previous: dict[str, tuple[int, int]], cfg: DependencyChangeConfig,
) -> list[EdgeChange]:  # fmt: skip
    out: list[EdgeChange] = []
    for svc, rows in sorted(versions.items()):
        by_version = {str(r["variant"]): r for r in rows if r["variant"]}
        new_v = max(by_version, key=lambda v: by_version[v]["first"])
        at = by_version[new_v]["first"]
        old = sorted(v for v in by_version if v != new_v)
        spans_before = sum(int(by_version[v]["spans"]) for v in old) + previous.get(svc, (0, 0))[0]
        spans_after = int(by_version[new_v]["spans"])
        if spans_before < cfg.min_compare_spans or spans_after < cfg.min_compare_spans:
            continue
        sides: dict[tuple[str, str], tuple[_Side, _Side]] = defaultdict(lambda: (_Side(), _Side()))
        for e in edges:
            if e["source"] != svc or not e["version"]:
                continue
            b, a = sides[(e["target"], e["target_kind"])]
            (a if e["version"] == new_v else b).add(
                e["calls"], e["traces"], e["first"], e["last"], e["examples"]
            )
        traces = int(by_version[new_v]["traces"])
        for (target, kind), (b, a) in sorted(sides.items()):
            change: Change | None = None
            if (
                a.calls >= cfg.min_calls
                and b.calls == 0
                and _unlikely(a.calls, spans_after, spans_before, cfg)
            ):
                change = "new"
            elif (
                b.calls >= cfg.min_calls
                and a.calls == 0
                and _unlikely(b.calls, spans_before, spans_after, cfg)
            ):
                change = "vanished"
            if change:
                out.append(EdgeChange(change, svc, target, kind, b, a, spans_before, spans_after, traces,
                                      (",".join(old), new_v, at)))  # fmt: skip
    return out


def _periods(
    edges: list[dict[str, Any]], current: dict[str, tuple[int, int]], previous: dict[str, tuple[int, int]],
    cfg: DependencyChangeConfig,
) -> list[EdgeChange]:  # fmt: skip
    sides: dict[tuple[str, str, str], tuple[_Side, _Side]] = defaultdict(lambda: (_Side(), _Side()))
    for e in edges:
        b, a = sides[(e["source"], e["target"], e["target_kind"])]
        (a if e["cur"] else b).add(e["calls"], e["traces"], e["first"], e["last"], e["examples"])
    out: list[EdgeChange] = []
    for (svc, target, kind), (b, a) in sorted(sides.items()):
        (before, before_traces), (after, after_traces) = previous.get(svc, (0, 0)), current.get(svc, (0, 0))
        if before < cfg.min_compare_spans or after < cfg.min_compare_spans:
            continue
        if a.calls >= cfg.min_calls and b.calls == 0 and _unlikely(a.calls, after, before, cfg):
            out.append(EdgeChange("new", svc, target, kind, b, a, before, after, after_traces, None))
        elif b.calls >= cfg.min_calls and a.calls == 0 and _unlikely(b.calls, before, after, cfg):
            out.append(EdgeChange("vanished", svc, target, kind, b, a, before, after, before_traces, None))
    return out


def finding(c: EdgeChange, min_traces: int) -> Finding | None:
    """The finding of one change, or ``None`` below the minimum of traces."""
    kind: Kind = "new_dependency" if c.change == "new" else "vanished_dependency"
    side = c.after if c.change == "new" else c.before
    if side.traces < min_traces:
        return None
    e = f"{c.source}->{c.target}"
    key = key_of(c.source, c.target)
    ids = tuple(side.examples)
    when = "after" if c.change == "new" else "before"
    ev: list[Evidence] = [
        evidence(
            kind,
            key,
            "calls",
            "topology",
            f"calls {e} {when} the change",
            float(side.calls),
            0.0,
            "calls",
            ids,
        ),
        evidence(
            kind,
            key,
            "caller_spans",
            "metric",
            f"spans of {c.source} on the side without the edge",
            float(c.caller_before if c.change == "new" else c.caller_after),
            None,
            "spans",
        ),
    ]
    if c.deploy is not None:
        old, new, at = c.deploy
        ev.append(
            evidence(
                kind,
                key,
                "version",
                "deploy",
                f"service.version of {c.source} changed at {at.isoformat()}Z",
                new,
                old,
            )
        )
        root = RootCause(node(c.source), "deploy", tuple(x.id for x in ev))
        cause = (
            f"since {c.source} {new} was deployed"
            if c.change == "new"
            else f"since {c.source} {new} replaced {old}"
        )
    else:
        root = RootCause(edge(c.source, c.target), "dependency", (ev[0].id,))
        cause = "against the previous period"
    verb = "now calls" if c.change == "new" else "no longer calls"
    action = (
        f"Confirm that {c.source} is meant to call {c.target}: check its timeouts, retries and capacity, "
        "and add it to the service's documented dependencies"
        if c.change == "new"
        else f"Confirm that {c.source} stopped calling {c.target} on purpose (a removed feature, a config "
        "change), not because a code path broke; retire the dependency if it is gone"
    )
    dur = ((side.last - side.first).total_seconds()) if side.first and side.last else 0.0
    return Finding(
        kind=kind,
        category="change",
        title=f"{c.source} {verb} {c.target} ({cause})",
        key=key,
        entities=(node(c.source), node(c.target, c.target_kind), edge(c.source, c.target)),
        evidence=tuple(ev),
        impact=Impact(side.traces, max(side.traces, c.caller_traces), duration_s=round(dur, 3)),
        root_cause=root,
        recommendations=recommend(
            action,
            f"{e}: {side.calls} calls {when} the change, none on the other side",
            ev,
        ),
        facts={"calls": side.calls, "change_type": root.change_type},
    )
