"""One scan of the window's resources, shared by ``single_point_of_failure``, ``encoding_drift``,
``sdk_drift`` and the deploy side of the dependency changes.

Reading ``ResourceAttributes`` is the expensive part of these detectors (a map per span), so it
is read once: spans and traces per (service, instance, version, encoding, SDK), plus, by
grouping sets, traces per service and in the whole window. Figures per variant (an encoding, an
SDK, a version) add up their instance groups: a trace that crosses two instances of a service
counts for both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from otel_ai.analysis.insights.detectors.common import params
from otel_ai.analysis.insights.model import DetectContext

_INST = "ResourceAttributes['service.instance.id']"
_SDK = (
    "if(ResourceAttributes['telemetry.sdk.language'] = '' AND ResourceAttributes['telemetry.sdk.version'] = '', '',"
    " concat(ResourceAttributes['telemetry.sdk.language'], if(ResourceAttributes['telemetry.sdk.name'] NOT IN"
    " ('', 'opentelemetry'), '/' || ResourceAttributes['telemetry.sdk.name'], ''), ' ',"
    " ResourceAttributes['telemetry.sdk.version']))"
)
RESOURCES_SQL = f"""
SELECT ServiceName AS service, {_INST} AS instance, ResourceAttributes['service.version'] AS version,
       IngestEncoding || if(IngestTransport != '', '/' || IngestTransport, '') AS encoding, {_SDK} AS sdk,
       grouping(service, instance, version, encoding, sdk) AS g,
       count() AS spans, uniq(TraceId) AS traces, min(Timestamp) AS first, max(Timestamp) AS last,
       any(TraceId) AS example
FROM {{db:Identifier}}.otel_traces
PREWHERE Timestamp >= {{start:DateTime64(9)}} AND Timestamp < {{end:DateTime64(9)}}
GROUP BY GROUPING SETS ((service, instance, version, encoding, sdk), (service), ())
"""
# grouping() bits, most significant first: service, instance, version, encoding, sdk (1 = rolled up).
_FULL, _SERVICE, _TOTAL = 0b00000, 0b01111, 0b11111


@dataclass
class Resources:
    groups: list[dict[str, Any]] = field(default_factory=list)  # one per (service, instance, …)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    total_traces: int = 0

    def instances(self, service: str) -> set[str]:
        return {str(r["instance"]) for r in self.groups if r["service"] == service and r["instance"]}

    def unnamed(self, service: str) -> bool:
        return any(not r["instance"] for r in self.groups if r["service"] == service)

    def variants(self, by: str) -> dict[str, list[dict[str, Any]]]:
        """service → one row per value of ``by`` (encoding, sdk, version), instance groups added up."""
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.groups:
            k = (str(r["service"]), str(r[by]))
            v = acc.get(k)
            if v is None:
                acc[k] = {"service": k[0], "variant": k[1], "spans": r["spans"], "traces": r["traces"],
                          "first": r["first"], "last": r["last"], "instance_ids": {r["instance"]} - {""},
                          "examples": {r["example"]}}  # fmt: skip
                continue
            v["spans"] += r["spans"]
            v["traces"] += r["traces"]
            v["first"], v["last"] = min(v["first"], r["first"]), max(v["last"], r["last"])
            v["instance_ids"] |= {r["instance"]} - {""}
            v["examples"].add(r["example"])
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for v in acc.values():
            v["instance_ids"] = sorted(v["instance_ids"])[:3]
            v["examples"] = sorted(v["examples"])[:5]
            out[v["service"]].append(v)
        return dict(out)


def resources(ctx: DetectContext) -> Resources:
    cached = ctx.cache.get("resources")
    if isinstance(cached, Resources):
        return cached
    out = Resources()
    for r in ctx.storage.query_dicts(RESOURCES_SQL, params(ctx)):
        g = int(r["g"])
        if g == _FULL:
            out.groups.append(r)
        elif g == _SERVICE:
            out.services[str(r["service"])] = r
        elif g == _TOTAL:
            out.total_traces = int(r["traces"])
    ctx.cache["resources"] = out
    return out
