"""Token and cost accounting: one record per provider attempt or cache hit, totals by
provider / model / task. The in-memory store serves library use; the daemon persists records in
ClickHouse (see :mod:`otel_ai.llm.service`)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class CallRecord:
    task: str
    provider: str
    model: str
    deployment: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    ok: bool = True
    cached: bool = False
    error_type: str = ""
    ts: float = field(default_factory=time.time)


_SUMS = ("requests", "errors", "cache_hits", "input_tokens", "output_tokens", "cost_usd", "latency_s")


def _add(acc: dict[str, Any], rec: CallRecord) -> None:
    acc["requests"] += 1
    acc["errors"] += 0 if rec.ok else 1
    acc["cache_hits"] += 1 if rec.cached else 0
    acc["input_tokens"] += rec.input_tokens
    acc["output_tokens"] += rec.output_tokens
    acc["cost_usd"] += rec.cost_usd
    acc["latency_s"] += rec.latency_s if rec.ok and not rec.cached else 0.0


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn per-(provider, model, task) sums into the ``/usage`` answer."""

    def fold(keys: tuple[str, ...]) -> list[dict[str, Any]]:
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            k = tuple(r[x] for x in keys)
            acc = out.setdefault(k, {**dict(zip(keys, k, strict=True)), **dict.fromkeys(_SUMS, 0)})
            for s in _SUMS:
                acc[s] += r[s]
        result = []
        for acc in out.values():
            calls = acc["requests"] - acc["cache_hits"] - acc["errors"]
            acc["avg_latency_ms"] = round(acc.pop("latency_s") * 1000 / calls, 3) if calls > 0 else None
            acc["cost_usd"] = round(acc["cost_usd"], 10)
            result.append(acc)
        return sorted(result, key=lambda a: -a["requests"])

    total = fold(())
    return {
        "totals": total[0]
        if total
        else {**{k: 0 for k in _SUMS if k != "latency_s"}, "avg_latency_ms": None},
        "by_provider": fold(("provider",)),
        "by_model": fold(("provider", "model")),
        "by_task": fold(("task",)),
    }


class UsageStore(Protocol):
    def record(self, records: list[CallRecord]) -> None: ...
    def rows(self) -> list[dict[str, Any]]: ...


class MemoryUsageStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: dict[tuple[str, str, str], dict[str, Any]] = {}

    def record(self, records: list[CallRecord]) -> None:
        with self._lock:
            for rec in records:
                key = (rec.provider, rec.model, rec.task)
                acc = self._sums.setdefault(
                    key,
                    {
                        "provider": rec.provider,
                        "model": rec.model,
                        "task": rec.task,
                        **dict.fromkeys(_SUMS, 0),
                    },
                )
                _add(acc, rec)

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(v) for v in self._sums.values()]


def record_dict(rec: CallRecord) -> dict[str, Any]:
    return asdict(rec)
