"""The resident-memory guard (``memory.*``): purges the embedded engine's freed pages above a
threshold, refuses exports above the soft limit while ingest holds data, stops the write-ahead
drain from reading ahead, and shows itself in /api/v1/status and /metrics.

The guard's RSS reader is a parameter, so levels can be set exactly; the purge it calls is the
real ``SYSTEM JEMALLOC PURGE`` on the real embedded engine, and the daemon-level tests read the
real RSS of this process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from otel_ai.config import load_config
from otel_ai.errors import ConfigError, OverloadedError
from otel_ai.model import Payload
from otel_ai.pipeline import Pipeline
from otel_ai.pipeline.config import MemoryConfig
from otel_ai.pipeline.memory import MIB, MemoryGuard, resident_bytes
from otel_ai.storage import Storage
from otel_ai.testing.otlp_payloads import trace_request
from otel_ai.testing.stores import storage_at
from tests.pipeline.recording import RecordingWriter, payload, pipeline_config, until

PB = {"content-type": "application/x-protobuf"}


class Level:
    """An RSS reader whose value the test sets."""

    def __init__(self, mib: int) -> None:
        self.mib = mib

    def __call__(self) -> int:
        return self.mib * MIB


def test_resident_bytes_reads_this_process() -> None:
    rss = resident_bytes()
    assert rss is not None and 10 * MIB < rss < 64 * 1024 * MIB


def test_purges_only_above_the_threshold_and_at_most_once_per_interval(storage: Storage) -> None:
    level = Level(300)
    cfg = MemoryConfig(limit_mib=1000, spike_limit_mib=100, purge_above_mib=500, purge_interval_ms=60_000)
    registry = CollectorRegistry()
    guard = MemoryGuard(cfg, storage.release_memory, registry=registry, read_rss=level)
    guard.check()
    assert guard.purges == 0 and guard.rss == 300 * MIB and not guard.over_soft_limit
    level.mib = 600
    guard.check()  # the real SYSTEM JEMALLOC PURGE on the embedded engine
    guard.check()  # within the interval: not again
    assert guard.purges == 1 and registry.get_sample_value("otel_ai_memory_purges_total") == 1
    assert registry.get_sample_value("otel_ai_memory_resident_bytes") == 600 * MIB
    assert not guard.over_soft_limit  # 600 < the soft limit 1000 - 100
    guard._last_purge -= 61
    guard.check()
    assert guard.purges == 2


def test_soft_limit_sets_and_clears_the_refusal() -> None:
    level = Level(850)
    guard = MemoryGuard(
        MemoryConfig(limit_mib=1000, spike_limit_mib=100, purge_above_mib=0), None, read_rss=level
    )
    guard.check()
    assert not guard.over_soft_limit and guard.soft_limit == 900 * MIB
    level.mib = 901
    guard.check()
    why = guard.refusal_message()
    assert guard.over_soft_limit and "901 MiB" in why and "900 MiB" in why and "memory.limit_mib" in why
    level.mib = 899
    guard.check()
    assert not guard.over_soft_limit
    status = guard.status()
    assert status["refusal_periods"] == 1 and status["peak_resident_bytes"] == 901 * MIB
    assert not status["above_soft_limit"] and status["purges"] == 0


def test_a_store_that_cannot_purge_is_not_asked_again() -> None:
    calls: list[int] = []

    def cannot() -> bool:
        calls.append(1)
        return False

    guard = MemoryGuard(MemoryConfig(purge_above_mib=100, purge_interval_ms=0), cannot, read_rss=Level(200))
    for _ in range(3):
        guard.check()
    assert calls == [1] and guard.purges == 0


def test_a_server_dsn_does_not_purge() -> None:
    assert storage_at("http://127.0.0.1:9/otel").release_memory() is False


def test_default_guard_only_reports_the_rss() -> None:
    cfg = load_config(None, environ={}).memory
    guard = MemoryGuard(cfg, lambda: pytest.fail("purged"), registry=CollectorRegistry())
    assert not guard.enabled and guard.soft_limit == 0 and guard.purge_above == 0
    guard.start()
    try:
        assert guard._thread is not None and guard.rss > 10 * MIB
        guard.check()
        assert not guard.over_soft_limit and guard.purges == 0
    finally:
        guard.shutdown()


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (
            {"memory.limit_mib": 512, "memory.spike_limit_mib": 512},
            "spike_limit_mib (512) must be below limit_mib",
        ),
        ({"memory.limit_mib": -1}, "memory.limit_mib"),
        ({"memory.check_interval_ms": 1}, "memory.check_interval_ms"),
        ({"memory.purge_above": 1}, "memory.purge_above"),
    ],
)
def test_bad_memory_config_names_the_key(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={}, overrides=overrides)
    assert needle in str(err.value)


def test_no_limit_takes_any_spike() -> None:
    cfg = load_config(None, environ={}, overrides={"memory.limit_mib": 0, "memory.spike_limit_mib": 4096})
    assert MemoryGuard(cfg.memory, None).soft_limit == 0


async def test_pipeline_refuses_only_while_ingest_holds_data(tmp_path: Path) -> None:
    level = Level(2000)
    guard = MemoryGuard(MemoryConfig(limit_mib=1000, spike_limit_mib=100), None, read_rss=level)
    guard.check()
    assert guard.over_soft_limit
    w = RecordingWriter()
    w.gate.clear()  # storage is slow: the first batch stays in flight
    pl = Pipeline(pipeline_config(tmp_path, batch_items=10), w, registry=CollectorRegistry(), memory=guard)
    await pl.start()
    # nothing in flight: refusing could not lower the memory, so the first export is admitted
    first = asyncio.ensure_future(pl.submit(payload(b"first")))
    await until(lambda: pl.status()["queue"]["items"] == 10)
    with pytest.raises(OverloadedError) as err:
        await pl.submit(payload(b"second"))
    assert "soft limit 900 MiB" in err.value.message
    level.mib = 800
    guard.check()
    second = asyncio.ensure_future(pl.submit(payload(b"second")))
    w.gate.set()
    await asyncio.gather(first, second)
    assert sorted(w.stored) == [b"first", b"second"]  # two insert workers: any order
    await pl.shutdown(5)


class _Gates:
    """A writer whose calls block until released one by one (call n waits for gate n)."""

    def __init__(self) -> None:
        self.entered: list[list[bytes]] = []
        self._gates = [threading.Event() for _ in range(20)]
        self._lock = threading.Lock()

    def write(self, payloads: Sequence[Payload]) -> None:
        with self._lock:
            n = len(self.entered)
            self.entered.append([p.body for p in payloads])
        self._gates[n].wait(30)

    def release(self, n: int) -> None:
        self._gates[n].set()

    def release_all(self) -> None:
        for g in self._gates:
            g.set()


async def test_write_ahead_drain_inserts_one_half_batch_at_a_time_under_memory_pressure(
    tmp_path: Path,
) -> None:
    w = _Gates()
    cfg = pipeline_config(tmp_path, ack="spool", batch_items=100, batch_min_items=1, insert_workers=2)
    pl = Pipeline(cfg, w)  # type: ignore[arg-type]
    pressure = True
    assert pl.wal is not None
    pl.wal.under_memory_pressure = lambda: pressure
    await pl.start()
    await pl.submit(payload(b"a0"))
    await until(lambda: len(w.entered) == 1)  # batch 0 inserting, blocked
    await asyncio.gather(*(pl.submit(payload(b"b%02d" % i)) for i in range(25)))  # full batches wait
    await asyncio.sleep(0.3)
    assert len(w.entered) == 1  # under pressure: no second insert beside the first
    w.release(0)
    await until(lambda: len(w.entered) == 2)
    assert w.entered[1] == [b"b%02d" % i for i in range(5)]  # half a batch (50 of 100 items)
    pressure = False
    await until(lambda: len(w.entered) == 3)  # pressure gone: full batches, read ahead beside
    assert w.entered[2] == [b"b%02d" % i for i in range(5, 15)]
    w.release_all()
    await until(lambda: pl.wal is not None and pl.wal.pending_items == 0)
    assert [b for call in w.entered for b in call] == [b"a0"] + [b"b%02d" % i for i in range(25)]
    await pl.shutdown(5)


def test_daemon_over_its_soft_limit_answers_503_and_keeps_what_it_stored(make_daemon: Any) -> None:
    """This test process is far above 64 MiB resident: with a batch held in flight, an export
    gets 503 + Retry-After naming the memory limit; what was accepted is stored."""
    d = make_daemon(
        extra={
            "memory.limit_mib": 64,
            "memory.spike_limit_mib": 0,
            "memory.check_interval_ms": 10,
            "pipeline.batch_timeout_ms": 5,
            "ingest.retry_after_s": 4,
        }
    )
    pl = d.daemon.pipeline
    gate = threading.Event()
    inner = pl.writer

    class Held:
        def write(self, payloads: Sequence[Payload]) -> None:
            gate.wait(30)
            inner.write(payloads)

    pl.writer = Held()
    url = d.ep.http_url + "/v1/traces"
    held_req, trace_id = trace_request(5)
    results: list[httpx.Response] = []
    t = threading.Thread(
        target=lambda: results.append(
            httpx.post(url, content=held_req.SerializeToString(), headers=PB, timeout=60)
        )
    )
    t.start()
    for _ in range(500):
        if pl.status()["queue"]["items"]:
            break
        threading.Event().wait(0.01)
    refused = httpx.post(url, content=trace_request(3)[0].SerializeToString(), headers=PB, timeout=30)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "4"
    assert b"soft limit 64 MiB" in refused.content
    status = d.get("/api/v1/status").json()
    assert status["memory"]["above_soft_limit"] and status["memory"]["soft_limit_bytes"] == 64 * MIB
    assert status["memory"]["resident_bytes"] > 64 * MIB
    metrics = d.get("/metrics").text
    assert (
        "otel_ai_memory_resident_bytes " in metrics
        and "otel_ai_memory_soft_limit_bytes 6.7108864e+07" in metrics
    )
    gate.set()
    t.join(60)
    assert results and results[0].status_code == 200
    got = d.get(f"/api/v1/traces/{trace_id}")
    assert got.status_code == 200 and len(got.json()["spans"]) == 5
