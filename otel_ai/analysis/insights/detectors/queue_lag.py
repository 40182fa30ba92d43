"""``queue_lag``: delay from a PRODUCER span's end to the start of the CONSUMER span it feeds
(the consumer's parent, or a span link), per topic and consumer; the previous period is the
baseline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from otel_ai.analysis.insights.detectors.common import edge, evidence, key_of, naive, node, recommend
from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.model import DetectContext, Finding, Impact, Kind

KIND: Kind = "queue_lag"
_TOPIC = (
    "SpanAttributes['messaging.system'] || if(SpanAttributes['messaging.destination.name'] != '',"
    " '/' || SpanAttributes['messaging.destination.name'], '')"
)
_GROUP = (
    "if(SpanAttributes['messaging.consumer.group.name'] != '', SpanAttributes['messaging.consumer.group.name'],"
    " SpanAttributes['messaging.kafka.consumer.group'])"
)
_CONSUMER_COLS = (
    f"toUnixTimestamp64Nano(Timestamp) AS cs, ServiceName AS svc, {_GROUP} AS grp, TraceId AS tid"
)
LAG_SQL = f"""
SELECT topic, producer, consumer, any(grp) AS grp, cs >= {{start_ns:Int64}} AS cur,
       count() AS messages, uniq(tid) AS traces,
       quantile(0.5)(lag) / 1e6 AS p50, quantile(0.95)(lag) / 1e6 AS p95, max(lag) / 1e6 AS max_ms,
       min(cs) AS first, max(cs) AS last,
       arrayMap(x -> x.2, groupArraySorted({{n:UInt32}})((-lag, tid))) AS slowest
FROM (
SELECT p.topic AS topic, p.psvc AS producer, c.svc AS consumer, c.grp AS grp, c.cs AS cs, c.tid AS tid,
       greatest(toInt64(c.cs) - toInt64(p.pe), 0) AS lag
FROM (
    SELECT cityHash64(TraceId, SpanId) AS k, toUnixTimestamp64Nano(Timestamp) + Duration AS pe,
           ServiceName AS psvc, {_TOPIC} AS topic
    FROM {{db:Identifier}}.otel_traces
    PREWHERE Timestamp >= {{p_start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}} AND SpanKind = 'Producer'
) AS p
INNER JOIN (
    SELECT cityHash64(TraceId, ParentSpanId) AS pk, {_CONSUMER_COLS}
    FROM {{db:Identifier}}.otel_traces
    PREWHERE Timestamp >= {{c_start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}}
      AND SpanKind = 'Consumer' AND ParentSpanId != ''
    UNION ALL
    SELECT cityHash64(l.1, l.2), {_CONSUMER_COLS}
    FROM {{db:Identifier}}.otel_traces
    ARRAY JOIN arrayZip(Links.TraceId, Links.SpanId) AS l
    PREWHERE Timestamp >= {{c_start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}}
      AND SpanKind = 'Consumer' AND notEmpty(Links.SpanId)
    WHERE NOT (l.1 = TraceId AND l.2 = ParentSpanId)
) AS c ON p.k = c.pk
)
GROUP BY topic, producer, consumer, cur
"""
# Producers up to this long before a consumer still pair with it.
MAX_LAG = timedelta(minutes=30)


def queue_pairs(ctx: DetectContext, n_examples: int) -> list[dict[str, Any]]:
    """Producer → consumer pairs per topic over the window and the period before it (``cur``
    tells which), with lag figures; one query per run, shared with ``dependency_cycle`` (a
    consumer linked to its producer starts a trace of its own, so the sample cannot see that edge)."""
    cached = ctx.cache.get("queue_pairs")
    if isinstance(cached, list):
        return cached
    w, prev = ctx.window, ctx.previous
    rows = ctx.storage.query_dicts(
        LAG_SQL,
        {
            "db": ctx.storage.database,
            "p_start": naive(prev.start - MAX_LAG),
            "c_start": naive(prev.start),
            "end": naive(w.end),
            "start_ns": int(w.start.timestamp() * 1e9),
            "n": max(1, n_examples),
        },
    )
    ctx.cache["queue_pairs"] = rows
    return rows


class QueueLagDetector:
    kind: Kind = KIND

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg, self.n_examples = config.queue_lag, config.example_traces

    def detect(self, ctx: DetectContext) -> list[Finding]:
        rows = queue_pairs(ctx, self.n_examples)
        before = {(r["topic"], r["producer"], r["consumer"]): r for r in rows if not r["cur"]}
        out = []
        for r in sorted(
            (r for r in rows if r["cur"]), key=lambda r: (r["topic"], r["producer"], r["consumer"])
        ):
            if r["p95"] < self.cfg.min_p95_lag_ms or r["messages"] < self.cfg.min_messages:
                continue
            if r["traces"] < self.cfg.min_traces:
                continue
            out.append(self._finding(r, before.get((r["topic"], r["producer"], r["consumer"]))))
        return out

    def _finding(self, r: dict[str, Any], base: dict[str, Any] | None) -> Finding:
        topic, producer, consumer = str(r["topic"]), str(r["producer"]), str(r["consumer"])
        group = str(r["grp"] or consumer)
        key = key_of(topic, consumer)
        p95, p50 = float(r["p95"]), float(r["p50"])
        ids = tuple(r["slowest"])
        ev = (
            evidence(
                KIND,
                key,
                "p95_lag_ms",
                "metric",
                f"p95 delay from publish on {topic} to processing by {consumer} (group {group})",
                p95,
                float(base["p95"]) if base else None,
                "ms",
                ids,
            ),
            evidence(
                KIND,
                key,
                "p50_lag_ms",
                "metric",
                "median delay",
                p50,
                float(base["p50"]) if base else None,
                "ms",
                ids,
            ),
            evidence(
                KIND,
                key,
                "messages",
                "metric",
                "messages consumed in the window",
                float(r["messages"]),
                None,
                "messages",
                ids,
            ),
        )
        dur = (int(r["last"]) - int(r["first"])) / 1e9
        return Finding(
            kind=KIND,
            category="performance",
            title=f"Queue lag: {consumer} processes {topic} {p95 / 1000:.1f} s after publish (p95)",
            key=key,
            entities=(node(topic, "messaging"), node(consumer), node(producer), edge(producer, consumer)),
            evidence=ev,
            impact=Impact(
                int(r["traces"]),
                int(r["messages"]),
                latency_ms=round(p95, 3),
                duration_s=round(dur, 3),
                at_entry=False,
            ),
            recommendations=recommend(
                f"Scale the {group} consumers of {topic} (more partitions and consumer instances) or speed "
                f"up {consumer}'s processing; check for a stuck partition or rebalancing",
                f"messages wait {p95 / 1000:.1f} s (p95) before {consumer} handles them",
                ev,
            ),
            facts={
                "p95_lag_ms": round(p95, 1),
                "p50_lag_ms": round(p50, 1),
                "topic": topic,
                "consumer_group": group,
            },
        )
