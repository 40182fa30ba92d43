"""``retry_storm``: the same callee operation called again and again under one parent after
failed attempts (or calls marked ``http.request.resend_count`` > 0), with the amplification
factor (attempts per logical call)."""

from __future__ import annotations

from collections import defaultdict

from otel_ai.analysis.insights.detectors.common import (
    edge,
    evidence,
    key_of,
    node,
    op,
    ratio_evidence,
    recommend,
)
from otel_ai.analysis.insights.detectors.config import RetryStormConfig
from otel_ai.analysis.insights.detectors.hits import Hits, impact
from otel_ai.analysis.insights.detectors.sample import SampleDetector, SpanRow, TraceSample, load
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

KIND: Kind = "retry_storm"


def _is_retry(calls: list[SpanRow], min_attempts: int) -> bool:
    if any(c.resend > 0 for c in calls):
        return True
    ordered = sorted(calls, key=lambda c: c.start)
    return len(ordered) >= min_attempts and any(c.error for c in ordered[:-1])


class RetryStormDetector(SampleDetector[RetryStormConfig]):
    kind: Kind = KIND

    def detect(self, ctx: DetectContext) -> list[Finding]:
        sample = load(ctx, self.sample_cfg)
        hits: dict[tuple[str, str, str, str], Hits] = defaultdict(Hits)
        for trace in sample.traces:
            for parent in trace.spans:
                groups: dict[tuple[str, str, str], list[SpanRow]] = defaultdict(list)
                for c in parent.children:
                    if c.is_client and c.callee:
                        groups[(c.callee, c.callee_kind, c.key or c.name)].append(c)
                for (callee, callee_kind, target_op), calls in groups.items():
                    if not _is_retry(calls, self.cfg.min_attempts):
                        continue
                    failed = sum(1 for c in calls if c.error)
                    h = hits[(parent.service, callee, callee_kind, target_op)]
                    h.add(
                        trace,
                        parent.start,
                        attempts=len(calls),
                        failed=failed,
                        retry_ms=sum(c.duration for c in sorted(calls, key=lambda c: c.start)[:-1]) / 1e6,
                    )
        out = []
        for k, h in sorted(hits.items()):
            if sample.scaled(h.traces.values()) < self.cfg.min_traces:
                continue
            if h.mean("attempts") < self.cfg.min_amplification:
                continue
            out.append(self._finding(sample, k, h))
        return out

    def _finding(self, sample: TraceSample, k: tuple[str, str, str, str], h: Hits) -> Finding:
        service, callee, callee_kind, target_op = k
        key = key_of(service, callee, target_op)
        amp = h.mean("attempts")
        failed = sum(h.figures["failed"]) / max(1.0, sum(h.figures["attempts"]))
        ids = h.trace_ids(self.n_examples)
        ev = (
            evidence(
                KIND,
                key,
                "amplification",
                "span_pattern",
                f"attempts per logical call from {service} to {callee} {target_op!r} (mean)",
                amp,
                1.0,
                "x",
                ids,
            ),
            ratio_evidence(
                KIND, key, "failed_share", "metric", "share of those attempts that failed", failed, ids
            ),
            evidence(
                KIND,
                key,
                "retry_ms",
                "metric",
                "time spent in attempts before the last one (mean)",
                h.mean("retry_ms"),
                0.0,
                "ms",
                ids,
            ),
        )
        return Finding(
            kind=KIND,
            category="reliability",
            title=f"Retry storm: {service} calls {callee} {target_op[:60]!r} {amp:.1f}x per request",
            key=key,
            entities=(
                node(service),
                node(callee, callee_kind),
                edge(service, callee),
                op(callee, target_op) if callee_kind == "service" else op(service, target_op),
            ),
            evidence=ev,
            impact=impact(sample, h, latency_ms=h.mean("retry_ms")),
            recommendations=recommend(
                f"Cap the retries of {service} to {callee} (a budget of attempts, exponential backoff "
                "with jitter, a circuit breaker) and fix the failure that triggers them",
                f"each logical call becomes {amp:.1f} calls, multiplying load on {callee} while it fails",
                ev,
            ),
            facts={"amplification": round(amp, 2), "failed_share": round(failed, 3), "callee": callee},
        )
