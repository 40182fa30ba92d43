"""Pipeline semantics with a recording writer standing in at the writer boundary.

The writer here is the seam a real outage or engine refusal crosses: it raises the same
``StorageError`` / ``DecodeError`` the real :class:`TelemetryWriter` raises. Real-storage
behaviour is covered by the daemon-level tests (tests/pipeline/test_outage_spool.py, tests/system/).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.errors import OverloadedError, StorageError
from otel_ai.model import Payload
from otel_ai.pipeline import Pipeline
from tests.pipeline.recording import RecordingWriter, payload, pipeline_config, until


async def test_batches_by_size_and_time_one_write_per_batch(tmp_path: Path) -> None:
    w = RecordingWriter()
    pl = Pipeline(
        pipeline_config(tmp_path, batch_items=30, batch_timeout_ms=50, batch_linger_ms=60_000),
        w,
        registry=CollectorRegistry(),
    )
    await pl.start()
    await asyncio.gather(
        *(pl.submit(payload(b"b%d" % i)) for i in range(7))
    )  # 70 items: 30 + 30 + 10 (timer)
    await pl.shutdown(5)
    assert sorted(len(c) for c in w.calls) == [1, 3, 3]
    assert sorted(w.stored) == sorted(b"b%d" % i for i in range(7))
    assert pl.status()["inserted_items"] == 70 and pl.status()["queue"]["items"] == 0


async def test_signals_are_never_mixed_in_one_write(tmp_path: Path) -> None:
    w = RecordingWriter()
    pl = Pipeline(pipeline_config(tmp_path), w, registry=CollectorRegistry())
    await pl.start()
    await asyncio.gather(
        pl.submit(payload(b"t", signal="traces")),
        pl.submit(payload(b"l", signal="logs")),
        pl.submit(payload(b"m", signal="metrics")),
    )
    await pl.shutdown(5)
    assert sorted(w.calls) == [[b"l"], [b"m"], [b"t"]]


async def test_full_queue_refuses_at_once_and_memory_stays_bounded(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.gate.clear()  # storage stalls: nothing leaves the queue
    pl = Pipeline(pipeline_config(tmp_path, queue_items=25, batch_items=10), w, registry=CollectorRegistry())
    await pl.start()
    admitted = [asyncio.create_task(pl.submit(payload(b"a%d" % i))) for i in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(OverloadedError, match=r"queue full \(20 of 25 items\)"):
        await pl.submit(payload(b"refused"))
    assert pl.status()["queue"]["items"] == 20
    w.gate.set()
    await asyncio.gather(*admitted)
    await pl.submit(payload(b"after"))  # room again
    await pl.shutdown(5)
    assert b"refused" not in w.stored and b"after" in w.stored


async def test_outage_spools_acks_then_replays_in_order(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.down = True
    pl = Pipeline(pipeline_config(tmp_path, batch_items=10), w, registry=CollectorRegistry())
    await pl.start()
    for i in range(5):  # each resolves: acked because spooled
        await pl.submit(payload(b"o%d" % i))
    st = pl.status()
    assert st["spooled_items"] == 50 and st["spool"]["bytes"] > 0 and "connection refused" in st["last_error"]
    assert w.stored == []
    w.down = False
    await until(lambda: not pl.spool.has_pending())
    await pl.submit(payload(b"live"))
    await pl.shutdown(5)
    assert w.stored == [b"o0", b"o1", b"o2", b"o3", b"o4", b"live"]  # replayed in order, then live
    assert pl.status()["replayed_items"] == 50 and pl.status()["spool"]["bytes"] == 0


async def test_spool_survives_restart(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.down = True
    pl = Pipeline(pipeline_config(tmp_path), w, registry=CollectorRegistry())
    await pl.start()
    await pl.submit(payload(b"kept"))
    await pl.shutdown(5)
    w2 = RecordingWriter()
    pl2 = Pipeline(pipeline_config(tmp_path), w2, registry=CollectorRegistry())
    await pl2.start()  # replays at start
    await until(lambda: w2.stored == [b"kept"])
    await pl2.shutdown(5)


async def test_engine_refusal_is_isolated_by_bisection(tmp_path: Path) -> None:
    w = RecordingWriter()
    pl = Pipeline(
        pipeline_config(tmp_path, batch_items=1000, batch_timeout_ms=50), w, registry=CollectorRegistry()
    )
    await pl.start()
    bodies = [b"ok0", b"ok1", b"BAD2", b"ok3", b"ok4", b"BAD5", b"ok6"]
    results = await asyncio.gather(*(pl.submit(payload(b)) for b in bodies), return_exceptions=True)
    await pl.shutdown(5)
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "NoneType",
        "DecodeError",
        "NoneType",
        "NoneType",
        "DecodeError",
        "NoneType",
    ]
    assert sorted(w.stored) == [b"ok0", b"ok1", b"ok3", b"ok4", b"ok6"]
    assert pl.m_dropped.labels("invalid")._value.get() == 20


async def test_spool_full_during_outage_refuses(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.down = True
    pl = Pipeline(pipeline_config(tmp_path, spool_max_bytes=200), w, registry=CollectorRegistry())
    await pl.start()
    await pl.submit(payload(b"x" * 100))
    with pytest.raises(OverloadedError, match="spool full"):
        await pl.submit(payload(b"y" * 100))
    await pl.shutdown(1)


async def test_shutdown_drains_everything_admitted(tmp_path: Path) -> None:
    w = RecordingWriter()
    pl = Pipeline(
        pipeline_config(tmp_path, batch_items=10**6, batch_timeout_ms=60_000, batch_linger_ms=60_000),
        w,
        registry=CollectorRegistry(),
    )
    await pl.start()
    tasks = [asyncio.create_task(pl.submit(payload(b"d%d" % i))) for i in range(20)]
    await asyncio.sleep(0.05)
    assert w.stored == []  # waiting for the (long) batch timer
    await pl.shutdown(5)
    await asyncio.gather(*tasks)
    assert len(w.stored) == 20
    with pytest.raises(OverloadedError, match="shutting down"):
        await pl.submit(payload(b"late"))


class PickyStorageWriter(RecordingWriter):
    """Storage refuses bodies starting with b"NO" for good (a non-retryable StorageError)."""

    def write(self, payloads: Sequence[Payload]) -> None:
        if any(p.body.startswith(b"NO") for p in payloads):
            self.calls.append([p.body for p in payloads])
            raise StorageError("Code: 62. Syntax error", retryable=False)
        super().write(payloads)


async def test_non_retryable_storage_error_fails_only_that_payload_and_never_spools(tmp_path: Path) -> None:
    w = PickyStorageWriter()
    pl = Pipeline(
        pipeline_config(tmp_path, batch_items=1000, batch_timeout_ms=50), w, registry=CollectorRegistry()
    )
    await pl.start()
    results = await asyncio.gather(
        *(pl.submit(payload(b)) for b in (b"a", b"NO", b"c")), return_exceptions=True
    )
    await pl.shutdown(5)
    assert isinstance(results[1], StorageError) and not results[1].retryable
    assert results[0] is None and results[2] is None and sorted(w.stored) == [b"a", b"c"]
    assert (
        pl.status()["spool"]["pending_records"] == 0
        and pl.m_dropped.labels("storage_rejected")._value.get() == 10
    )


async def test_group_commit_flushes_min_batch_when_a_worker_is_idle(tmp_path: Path) -> None:
    w = RecordingWriter()
    pl = Pipeline(
        pipeline_config(tmp_path, batch_items=1000, batch_min_items=20, batch_timeout_ms=60_000),
        w,
        registry=CollectorRegistry(),
    )
    await pl.start()
    # 20 items reach batch_min_items with idle workers: no 60 s wait for the timer.
    await asyncio.wait_for(asyncio.gather(pl.submit(payload(b"g1")), pl.submit(payload(b"g2"))), timeout=10)
    assert w.calls == [[b"g1", b"g2"]]
    await pl.shutdown(5)


async def test_while_an_insert_runs_the_idle_worker_waits_for_a_bigger_batch(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.gate.clear()  # the first insert runs until the gate opens
    cfg = pipeline_config(
        tmp_path,
        insert_workers=3,
        batch_items=1000,
        batch_min_items=20,
        batch_min_items_busy=50,
        batch_timeout_ms=400,
    )
    pl = Pipeline(cfg, w, registry=CollectorRegistry())
    await pl.start()
    first = [asyncio.create_task(pl.submit(payload(b"a%d" % i))) for i in range(2)]  # 20 items, all idle
    await until(lambda: len(w.started) == 1)
    second = [asyncio.create_task(pl.submit(payload(b"b%d" % i))) for i in range(2)]  # 20: would have gone
    await asyncio.sleep(0.1)
    assert len(w.started) == 1  # the idle worker waits: another insert runs
    second += [asyncio.create_task(pl.submit(payload(b"b%d" % i))) for i in range(2, 5)]  # 50: goes
    await until(lambda: len(w.started) == 2)
    assert w.started == [[b"a0", b"a1"], [b"b0", b"b1", b"b2", b"b3", b"b4"]]
    # Below batch_min_items_busy a batch still goes to an idle worker after batch_timeout_ms.
    third = asyncio.create_task(pl.submit(payload(b"c0")))
    await asyncio.sleep(0.2)
    assert len(w.started) == 2
    await until(lambda: len(w.started) == 3, timeout=2)
    assert w.started[2] == [b"c0"] and not w.calls  # the first two inserts are still running
    w.gate.set()
    await asyncio.wait_for(asyncio.gather(*first, *second, third), timeout=10)
    await pl.shutdown(5)


async def test_shutdown_deadline_spools_batches_no_worker_took(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.gate.clear()  # storage hangs
    pl = Pipeline(
        pipeline_config(tmp_path, insert_workers=1, batch_items=10), w, registry=CollectorRegistry()
    )
    await pl.start()
    stuck = asyncio.create_task(pl.submit(payload(b"stuck")))
    await asyncio.sleep(0.1)  # the only worker is now blocked inside write()
    queued = asyncio.create_task(pl.submit(payload(b"queued")))
    await asyncio.sleep(0.05)
    await pl.shutdown(0.5)
    await asyncio.wait_for(queued, 5)  # acked: it is in the spool
    assert not stuck.done()  # never acked: the sender retries it
    assert pl.spool.pending_items == 10 and pl.status()["spooled_items"] == 10
    w.gate.set()
    stuck.cancel()


async def test_queue_is_bounded_in_bytes_too(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.gate.clear()
    pl = Pipeline(
        pipeline_config(tmp_path, queue_bytes=1000, batch_items=10), w, registry=CollectorRegistry()
    )
    await pl.start()
    first = asyncio.create_task(pl.submit(payload(b"x" * 800, items=1)))
    await asyncio.sleep(0.05)
    with pytest.raises(OverloadedError, match=r"queue full \(800 of 1000 bytes\)"):
        await pl.submit(payload(b"y" * 300, items=1))
    w.gate.set()
    await first
    await pl.shutdown(5)


async def test_linger_while_a_worker_is_idle_groups_a_light_load(tmp_path: Path) -> None:
    w = RecordingWriter()
    pl = Pipeline(
        pipeline_config(tmp_path, batch_min_items=10**6, batch_timeout_ms=60_000, batch_linger_ms=100),
        w,
        registry=CollectorRegistry(),
    )
    await pl.start()
    first = asyncio.create_task(pl.submit(payload(b"l1")))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(pl.submit(payload(b"l2")))  # joins the lingering batch
    await asyncio.wait_for(asyncio.gather(first, second), timeout=10)  # not the 60 s timeout
    assert w.calls == [[b"l1", b"l2"]]
    await pl.shutdown(5)
