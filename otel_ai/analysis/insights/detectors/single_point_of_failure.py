"""``single_point_of_failure``: a service on the path of most traffic that runs one instance
(``service.instance.id``). Databases, queues and externals on that path are reported too, capped
at severity ``low``: whether they are replicated cannot be seen from the spans."""

from __future__ import annotations

from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import evidence, node, ratio_evidence, recommend
from otel_ai.analysis.insights.detectors.config import SpofConfig
from otel_ai.analysis.insights.detectors.hits import Hits
from otel_ai.analysis.insights.detectors.resources import resources
from otel_ai.analysis.insights.detectors.sample import SampleDetector, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Impact, Kind, Recommendation

KIND: Kind = "single_point_of_failure"


class SinglePointOfFailureDetector(SampleDetector[SpofConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        res = resources(ctx)
        total = res.total_traces
        if total == 0:
            return []
        out = []
        for svc, row in sorted(res.services.items()):
            instances, traces = res.instances(svc), int(row["traces"])
            share = traces / total
            if len(instances) != 1 or res.unnamed(svc) or share < self.cfg.min_traffic_share:
                continue
            if traces < self.cfg.min_traces:
                continue
            examples = sorted({str(r["example"]) for r in res.groups if r["service"] == svc})
            dur = (row["last"] - row["first"]).total_seconds()
            out.append(self._service(svc, next(iter(instances)), traces, total, dur, examples))
        if self.cfg.include_stores:
            out.extend(self._stores(ctx, total))
        return out

    def _service(
        self, svc: str, instance: str, traces: int, total: int, dur: float, ex: list[str]
    ) -> Finding:
        ids = tuple(ex[: self.n_examples])
        ev = (
            evidence(
                KIND,
                svc,
                "instances",
                "topology",
                f"distinct service.instance.id of {svc} in the window",
                1.0,
                2.0,
                "instances",
                ids,
            ),
            ratio_evidence(
                KIND,
                svc,
                "traffic_share",
                "metric",
                f"share of the window's traces that pass through {svc}",
                traces / total,
                ids,
            ),
        )
        return Finding(
            kind=KIND,
            category="reliability",
            title=f"Single point of failure: {svc} runs one instance and serves {traces / total:.0%} of traces",
            key=svc,
            entities=(node(svc),),
            evidence=ev,
            impact=Impact(traces, total, entry_share=1.0, duration_s=round(dur, 3), at_entry=True),
            recommendations=recommend(
                f"Run at least two instances of {svc} behind the load balancer (and spread them across "
                "hosts/zones) so a crash or a deploy does not take the request path down",
                f"one instance ({instance[:36]}) carries {traces / total:.0%} of the traffic",
                ev,
            ),
            facts={"instances": 1, "traffic_share": round(traces / total, 3), "instance": instance},
        )

    def _stores(self, ctx: DetectContext, total: int) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        hits: dict[tuple[str, str], Hits] = defaultdict(Hits)
        for t in sample.traces:
            for s in t.spans:
                if s.is_client and s.callee and s.callee_kind not in ("", "service"):
                    hits[(s.callee, s.callee_kind)].add(t, t.root.start)
        out = []
        for (peer, kind), h in sorted(hits.items()):
            traces = sample.scaled(h.traces.values())
            if traces / total < self.cfg.min_traffic_share or traces < self.cfg.min_traces:
                continue
            ids = h.trace_ids(self.n_examples)
            ev = (
                ratio_evidence(
                    KIND,
                    peer,
                    "traffic_share",
                    "metric",
                    f"share of the window's traces that use {peer}",
                    min(1.0, traces / total),
                    ids,
                ),
            )
            out.append(
                Finding(
                    kind=KIND,
                    category="reliability",
                    title=f"Possible single point of failure: {traces / total:.0%} of traces depend on {peer}",
                    key=peer,
                    entities=(node(peer, kind),),
                    evidence=ev,
                    impact=Impact(
                        traces,
                        total,
                        entry_share=1.0,
                        duration_s=round((h.last_ns - h.first_ns) / 1e9, 3),
                        at_entry=True,
                    ),
                    recommendations=(
                        Recommendation(
                            f"Check that {peer} is replicated with automatic failover; the spans cannot show it",
                            f"{traces / total:.0%} of requests need {peer}",
                            (ev[0].id,),
                        ),
                    ),
                    facts={"traffic_share": round(traces / total, 3)},
                    severity_cap="low",
                )
            )
        return out
