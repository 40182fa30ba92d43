"""A fast synthetic span writer for tests and quick experiments (not the demo generator).

Writes traces of a small shop-shaped call tree straight into ``otel_traces`` (column-oriented
insert), vectorised with numpy so days of 1-minute windows take a second or two. Faults act per
service: extra latency, an error probability, or unreachable (its spans vanish and the caller
errs); ``rate_factor`` scales traffic (a flash crowd).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from otel_ai.storage import Storage

# (service, operation, parent index, self-time median ms)
TREE: tuple[tuple[str, str, int, float], ...] = (
    ("frontend", "GET /api/checkout", -1, 4.0),
    ("checkout", "PlaceOrder", 0, 6.0),
    ("payment", "Charge", 1, 12.0),
    ("cart", "GetCart", 0, 3.0),
    ("valkey", "HGET", 3, 1.0),
    ("currency", "Convert", 1, 2.0),
)


@dataclass
class Fault:
    service: str
    start: int  # unix seconds
    end: int
    latency_ms: float = 0.0
    error_p: float = 0.0
    unreachable: bool = False
    rate_factor: float = 1.0


@dataclass
class SynthConfig:
    rate_per_min: float = 40.0
    diurnal: float = 0.3
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)


COLUMNS = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName", "Duration",
           "StatusCode"]  # fmt: skip


def generate(start: datetime, minutes: int, cfg: SynthConfig) -> list[list]:
    """Column-oriented rows for ``minutes`` of traffic from ``start`` (UTC)."""
    rng = np.random.default_rng(cfg.seed + int(start.timestamp()) // 60)
    t0 = int(start.timestamp()) // 60 * 60
    mins = t0 + 60 * np.arange(minutes)
    phase = 2 * np.pi * (mins % 86400) / 86400
    lam = cfg.rate_per_min * (1 + cfg.diurnal * np.sin(phase))
    for f in cfg.faults:
        lam = np.where((mins >= f.start) & (mins < f.end), lam * f.rate_factor, lam)
    counts = rng.poisson(np.maximum(lam, 0.0))
    R = int(counts.sum())
    ts = np.repeat(mins, counts) + rng.uniform(0, 60, R)
    k = len(TREE)
    self_ms = np.empty((R, k))
    err = np.zeros((R, k), bool)
    alive = np.ones((R, k), bool)
    for j, (svc, _op, _parent, med) in enumerate(TREE):
        self_ms[:, j] = med * rng.lognormal(0.0, 0.25, R)
        err[:, j] = rng.random(R) < 0.002
        for f in cfg.faults:
            if f.service != svc:
                continue
            on = (ts >= f.start) & (ts < f.end)
            self_ms[on, j] += f.latency_ms
            err[on, j] |= rng.random(int(on.sum())) < f.error_p
            if f.unreachable:
                alive[on, j] = False
    for j in range(k):  # an unreachable service takes its subtree with it
        p = TREE[j][2]
        if p >= 0:
            alive[:, j] &= alive[:, p]
    dur = self_ms.copy()
    for j in reversed(range(k)):  # children run sequentially inside their parent
        p = TREE[j][2]
        if p >= 0:
            dur[:, p] += np.where(alive[:, j], dur[:, j], 50.0)  # a refused call times out fast
            err[:, p] |= (alive[:, j] & err[:, j] & (rng.random(R) < 0.8)) | ~alive[:, j]
    trace_ids = [
        f"{x:016x}{i:016x}" for i, x in enumerate(rng.integers(0, 2**62, R, dtype=np.int64).tolist())
    ]
    cols: list[list] = [[] for _ in COLUMNS]
    base_span = rng.integers(0, 2**40, R, dtype=np.int64)
    for j, (svc, op, parent, _med) in enumerate(TREE):
        m = alive[:, j]
        idx = np.flatnonzero(m)
        cols[0].extend(datetime.fromtimestamp(float(t), UTC) for t in ts[idx])
        cols[1].extend(trace_ids[i] for i in idx)
        cols[2].extend(f"{base_span[i] * 16 + j:016x}" for i in idx)
        cols[3].extend("" if parent < 0 else f"{base_span[i] * 16 + parent:016x}" for i in idx)
        cols[4].extend([op] * len(idx))
        cols[5].extend(["Server"] * len(idx))
        cols[6].extend([svc] * len(idx))
        cols[7].extend((dur[idx, j] * 1e6).astype(np.int64).tolist())
        cols[8].extend(np.where(err[idx, j], "Error", "Unset").tolist())
    return cols


def write(
    storage: Storage, start: datetime, minutes: int, cfg: SynthConfig, *, chunk_minutes: int = 720
) -> int:
    """Generate and insert; returns the number of spans written."""
    total = 0
    for off in range(0, minutes, chunk_minutes):
        part = min(chunk_minutes, minutes - off)
        cols = generate(datetime.fromtimestamp(start.timestamp() + 60 * off, UTC), part, cfg)
        if cols[0]:
            storage.insert("otel_traces", cols, COLUMNS, column_oriented=True)
            total += len(cols[0])
    return total
