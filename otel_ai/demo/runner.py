"""``generate()``: Astronomy-Shop traffic for a simulated window, in real time or as fast as accepted.

Arrivals are Poisson per simulated second with a rate shaped by time of day (1 ± 0.5·sin, peak
15:00 UTC), the weekday (weekends x 0.7), per-minute lognormal noise and the active scenarios.
Everything random comes from one ``random.Random(seed)`` and a seeded id generator, so a seed
reproduces the same traces (ids included) for the same window.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.trace.export import SpanExporter

from otel_ai.demo import export
from otel_ai.demo.scenarios import (
    TimelineEvent,
    anchor,
    effects_at,
    ground_truth,
    write_ground_truth,
)
from otel_ai.demo.shop import Shop
from otel_ai.demo.telemetry import SERVICES, Telemetry

NS = 1_000_000_000


@dataclass
class RunResult:
    """What a run produced; ``ground_truth`` is the document written to the ground-truth file."""

    start_ns: int
    end_ns: int
    requests: int = 0
    spans: int = 0
    logs: int = 0
    exported_spans: int = 0
    dropped_spans: int = 0
    queued_spans: int = 0
    failed_exports: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    ground_truth: dict[str, Any] = field(default_factory=dict)
    # service.instance.id of the instances that export OTLP/JSON (encoding-drift)
    json_instances: set[str] = field(default_factory=set)

    @property
    def unsent_spans(self) -> int:
        """Spans neither exported nor dropped: queued or in flight when the run ended."""
        return max(0, self.spans - self.exported_spans - self.dropped_spans)

    @property
    def spans_per_cpu_second(self) -> float:
        return self.spans / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def _ns(value: datetime | int | float) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * NS)
    return int(value)


def traffic_shape(t_ns: int, seed: int, diurnal: bool = True) -> float:
    """Relative ingress rate at ``t_ns`` (mean ≈ 1 over a weekday)."""
    if not diurnal:
        return 1.0
    dt = datetime.fromtimestamp(t_ns / NS, UTC)
    hour = dt.hour + dt.minute / 60
    day = 1.0 + 0.5 * math.sin(2 * math.pi * (hour - 9) / 24)
    week = 0.7 if dt.weekday() >= 5 else 1.0
    noise = math.exp(0.05 * random.Random(seed * 1_000_003 + t_ns // (60 * NS)).gauss(0.0, 1.0))
    return day * week * noise


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def generate(
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    *,
    endpoint: str | None = None,
    protocol: str = "grpc",
    rate: float = 5.0,
    seed: int = 0,
    timeline: Sequence[TimelineEvent] = (),
    realtime: bool = False,
    ground_truth_path: str | Path | None = None,
    span_exporter: SpanExporter | None = None,
    log_exporter: LogRecordExporter | None = None,
    logs: bool = True,
    metrics: bool | None = None,
    metric_interval_s: float = 10.0,
    diurnal: bool = True,
    max_batch: int = 4096,
    max_queue: int = 32768,
    export_timeout_s: float = 30.0,
    drain_timeout_s: float = 120.0,
    stop: threading.Event | None = None,
    on_step: Callable[[RunResult], None] | None = None,
    encoder: str = "sdk",
    json_endpoint: str | None = None,
    instances: int = 2,
) -> RunResult:
    """Emit shop traffic for simulated ``[start, end)`` and return counts and CPU cost.

    ``start`` defaults to now; ``end=None`` runs until ``stop`` is set (real time only).
    ``realtime=False`` generates as fast as the exporter accepts (backfill); ``True`` paces to
    the wall clock. Pass ``span_exporter``/``log_exporter`` (e.g. the SDK's in-memory ones) to
    bypass the network; otherwise the official OTLP exporter for ``protocol`` sends to
    ``endpoint``. Metrics are emitted only in real time (the SDK metric API has no timestamps).
    Batches of ``max_batch`` spans go out one request at a time; at most ``max_queue`` spans wait
    in memory, then generation blocks until the daemon accepts more (nothing is dropped unless an
    export still fails after two minutes of retries). ``export_timeout_s`` bounds one request: a
    large batch on a busy daemon needs more than the SDK's 10 s default, and a timed-out batch is
    sent again (a duplicate, which OTLP allows). ``encoder="wire"`` encodes spans with
    :mod:`otel_ai.demo.wire` (5-10x faster than the SDK's encoder; grpc and http/protobuf only),
    for large backfills. With ``encoding-drift`` on the timeline, the odd instance's spans go out
    as OTLP/JSON over HTTP to ``json_endpoint`` (default: the HTTP endpoint next to ``endpoint``;
    OTLP/HTTP protobuf when the run itself sends JSON). ``instances``: replicas per service.
    At the end, what is queued gets ``drain_timeout_s`` seconds to go out
    (flush, then shutdown); past that it is counted as dropped, so a dead endpoint cannot hold
    the exit for minutes.
    """
    proto = export._check(protocol)
    if not rate > 0:
        raise ValueError(f"generate(): rate must be > 0 requests per second, got {rate}")
    endpoint = endpoint or export.default_endpoint(proto)
    start_ns = _ns(start) if start is not None else time.time_ns()
    end_ns = _ns(end) if end is not None else None
    if end_ns is None and not realtime:
        raise ValueError("generate(): end is required unless realtime=True")
    stop = stop or threading.Event()
    rng = random.Random(seed)
    if encoder not in ("sdk", "wire"):
        raise ValueError(f"generate(): encoder must be 'sdk' or 'wire', got {encoder!r}")
    if span_exporter is None and encoder == "wire":
        from otel_ai.demo.wire import WireSpanExporter

        span_exporter = WireSpanExporter(proto, endpoint, export_timeout_s)
    spans_out = span_exporter or export.span_exporter(proto, endpoint, export_timeout_s)
    json_ids: set[str] = set()
    if span_exporter is None and any(ev.scenario == "encoding-drift" for ev in timeline):
        if encoder == "wire":
            raise ValueError("generate(): encoding-drift sends SDK spans as OTLP/JSON; use encoder='sdk'")
        odd: export.Protocol = "http/protobuf" if proto == "http/json" else "http/json"
        other = export.span_exporter(
            odd, json_endpoint or export.http_endpoint(endpoint, proto), export_timeout_s
        )
        spans_out = export.SplitSpanExporter(spans_out, other, json_ids)
    sp = export.BlockingSpanProcessor(spans_out, max_batch=max_batch, max_queue=max_queue)
    lp = None
    if logs:
        logs_out = log_exporter or export.log_exporter(proto, endpoint, export_timeout_s)
        lp = export.BlockingLogProcessor(logs_out, max_batch=max_batch, max_queue=max_queue)
    want_metrics = realtime if metrics is None else metrics
    tel = Telemetry(
        span_processor=sp,
        log_processor=lp,
        id_generator=export.SeededIdGenerator(seed),
        seed=seed,
        metric_exporter=(lambda: export.metric_exporter(proto, endpoint, timeout=10.0))
        if want_metrics
        else None,
        metric_interval_ms=int(metric_interval_s * 1000),
        wire=encoder == "wire",
        instances=instances,
        json_instances=json_ids,
    )
    shop = Shop(tel, rng)
    events = anchor(timeline, start_ns)
    res = RunResult(start_ns=start_ns, end_ns=end_ns or start_ns, json_instances=json_ids)
    res.ground_truth = ground_truth(
        events, seed=seed, start_ns=start_ns, end_ns=end_ns, protocol=proto, rate=rate
    )
    if ground_truth_path:
        write_ground_truth(ground_truth_path, res.ground_truth)
    if want_metrics:
        for svc in SERVICES:
            tel.metrics(svc)
    cpu0, wall0 = time.process_time(), time.monotonic()
    t = start_ns
    try:
        while (end_ns is None or t < end_ns) and not stop.is_set():
            step_end = t + NS if end_ns is None else min(t + NS, end_ns)
            if realtime:
                wait = (step_end - time.time_ns()) / NS
                if wait > 0 and stop.wait(wait):
                    break
            eff = effects_at(events, t)
            shape = traffic_shape(t, seed, diurnal) * eff.rate_factor
            shop.eff, shop.load = eff, shape
            n = poisson(rng, rate * shape * (step_end - t) / NS)
            for a in sorted(t + int(rng.random() * (step_end - t)) for _ in range(n)):
                shop.request(a)
            if want_metrics:
                _update_state(tel, eff, shape)
            t = step_end
            res.end_ns = t
            if on_step is not None:
                _fill(res, shop, sp, cpu0, wall0)
                on_step(res)
    finally:
        # An endpoint that has refused every export so far gets a short drain, not the full one.
        refused_all = sp.batcher.exported == 0 and sp.batcher.failed_attempts > 0
        deadline = time.monotonic() + (min(drain_timeout_s, 2.0) if refused_all else drain_timeout_s)

        def left() -> float:
            return max(0.5, deadline - time.monotonic())

        for proc in (sp, lp):
            if proc is not None:
                proc.force_flush(int(left() * 1000))
        _fill(res, shop, sp, cpu0, wall0)
        for proc in (sp, lp):
            if proc is not None:
                proc.shutdown(left())
        tel.shutdown(timeout_s=min(10.0, left()))
        _fill(res, shop, sp, cpu0, wall0)
        if end_ns is None:
            res.ground_truth = ground_truth(
                events, seed=seed, start_ns=start_ns, end_ns=res.end_ns, protocol=proto, rate=rate
            )
        if ground_truth_path:
            write_ground_truth(ground_truth_path, res.ground_truth)
    return res


def _fill(res: RunResult, shop: Shop, sp: export.BlockingSpanProcessor, cpu0: float, wall0: float) -> None:
    res.requests, res.spans, res.logs = shop.requests, shop.spans, shop.logs
    res.exported_spans, res.dropped_spans = sp.batcher.exported, sp.batcher.dropped
    res.queued_spans = sp.batcher.queued
    res.failed_exports = sp.batcher.failed_attempts
    res.cpu_seconds = time.process_time() - cpu0
    res.wall_seconds = time.monotonic() - wall0


def _update_state(tel: Telemetry, eff: Any, shape: float) -> None:
    for svc in SERVICES:
        st = tel.state.get(svc)
        if st is None:
            continue
        st.cpu = min(1.0, 0.04 + 0.03 * shape + eff.cpu_load.get(svc, 0.0))
        st.memory_bytes = 120e6 * eff.memory_factor.get(svc, 1.0)
        st.consumer_lag_s = eff.consumer_lag_s
