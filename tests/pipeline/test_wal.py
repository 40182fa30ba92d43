"""``pipeline.ack: spool``: ack after the fsynced write-ahead log, insert from it in big batches.

Same recording writer as tests/pipeline/test_core.py (the seam real outages and engine refusals cross);
the daemon-level crash test (tests/system/test_kill9.py) runs this mode against real storage too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from otel_ai.errors import OverloadedError
from otel_ai.pipeline import Pipeline
from tests.pipeline.recording import RecordingWriter, payload, pipeline_config, until


def _wal_cfg(tmp_path: Path, **kw: object) -> object:
    return pipeline_config(tmp_path, ack="spool", **kw)


async def test_acks_before_the_insert_and_drains_in_big_batches(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.gate.clear()  # the storage is slow: the first insert blocks
    registry = CollectorRegistry()
    pl = Pipeline(_wal_cfg(tmp_path, batch_items=1000, batch_min_items=1), w, registry=registry)
    await pl.start()
    await pl.submit(payload(b"first"))  # acknowledged although nothing is inserted yet
    await until(lambda: pl.wal is not None and pl.wal.pending_items == 10)
    await until(lambda: len(w.started) == 1)  # the drainer took it (a loaded machine can be slow)
    # While the first insert hangs, 40 more requests are acked from the log...
    await asyncio.gather(*(pl.submit(payload(b"r%02d" % i)) for i in range(40)))
    assert w.stored == [] and pl.status()["wal"]["pending_items"] == 410
    assert registry.get_sample_value("otel_ai_wal_pending_items") == 410
    w.gate.set()
    await until(lambda: len(w.stored) == 41)
    # ... and go in as ONE batch after the one that was in flight, in arrival order.
    assert len(w.calls) == 2 and w.calls[0] == [b"first"] and len(w.calls[1]) == 40
    assert w.stored == [b"first"] + [b"r%02d" % i for i in range(40)]
    await pl.shutdown(5)
    st = pl.status()
    assert st["ack"] == "spool" and st["inserted_items"] == 410 and st["wal"]["bytes"] == 0


async def test_outage_keeps_acking_and_inserts_when_storage_returns(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.down = True
    pl = Pipeline(_wal_cfg(tmp_path), w, registry=CollectorRegistry())
    await pl.start()
    for i in range(5):
        await pl.submit(payload(b"o%d" % i))
    await until(lambda: pl.status()["storage_down"])
    assert w.stored == [] and "connection refused" in (pl.status()["last_error"] or "")
    w.down = False
    # The breaker closes just after the batch that drained the log is committed, not with the insert.
    await until(lambda: len(w.stored) == 5 and not pl.status()["storage_down"])
    assert w.stored == [b"o0", b"o1", b"o2", b"o3", b"o4"]
    await pl.shutdown(5)


async def test_the_log_survives_a_restart(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.down = True
    pl = Pipeline(_wal_cfg(tmp_path), w, registry=CollectorRegistry())
    await pl.start()
    await pl.submit(payload(b"kept", signal="logs"))
    await pl.submit(payload(b"kept-too", signal="metrics"))
    await pl.shutdown(1)  # storage still down: the acknowledged records stay in the log
    w2 = RecordingWriter()
    pl2 = Pipeline(_wal_cfg(tmp_path), w2, registry=CollectorRegistry())
    await pl2.start()
    await until(lambda: sorted(w2.stored) == [b"kept", b"kept-too"])
    await pl2.shutdown(5)
    assert pl2.wal is not None and pl2.wal.drained()


async def test_refused_content_is_dropped_and_counted_without_blocking_the_log(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.gate.clear()
    registry = CollectorRegistry()
    pl = Pipeline(_wal_cfg(tmp_path, batch_min_items=1), w, registry=registry)
    await pl.start()
    await pl.submit(payload(b"a"))
    await until(lambda: len(w.calls) == 0 and pl.wal is not None and pl.wal.pending_items == 10)
    await asyncio.gather(pl.submit(payload(b"BAD")), pl.submit(payload(b"b")))
    w.gate.set()
    await until(lambda: w.stored == [b"a", b"b"])
    await pl.submit(payload(b"c"))
    await until(lambda: w.stored == [b"a", b"b", b"c"])
    assert registry.get_sample_value("otel_ai_pipeline_dropped_items_total", {"reason": "invalid"}) == 10
    await pl.shutdown(5)


async def test_a_full_log_refuses_with_503(tmp_path: Path) -> None:
    w = RecordingWriter()
    w.down = True
    pl = Pipeline(_wal_cfg(tmp_path, spool_max_bytes=200), w, registry=CollectorRegistry())
    await pl.start()
    await pl.submit(payload(b"x" * 100))
    with pytest.raises(OverloadedError, match="spool full"):
        await pl.submit(payload(b"y" * 100))
    assert pl.status()["queue"]["items"] == 0  # the refused request holds no memory
    await pl.shutdown(1)


async def test_a_backlog_past_wal_max_items_refuses_with_503_until_it_drains(tmp_path: Path) -> None:
    """Storage slower than the senders: the log holds at most ``wal_max_items`` not yet inserted,
    then exports are refused (back-pressure) instead of rows becoming queryable later and later."""
    w = RecordingWriter()
    w.gate.clear()  # storage stuck: nothing leaves the log
    pl = Pipeline(_wal_cfg(tmp_path, wal_max_items=30, batch_min_items=1), w, registry=CollectorRegistry())
    await pl.start()
    for i in range(3):  # 3 x 10 items: exactly the bound
        await pl.submit(payload(b"a%d" % i))
    with pytest.raises(OverloadedError, match="backlog full \\(30 of 30 items"):
        await pl.submit(payload(b"refused"))
    w.gate.set()
    await until(lambda: pl.wal is not None and pl.wal.pending_items == 0)
    await pl.submit(payload(b"after"))  # drained: accepted again
    await until(lambda: b"after" in w.stored)
    assert b"refused" not in w.stored and w.stored[:3] == [b"a0", b"a1", b"a2"]
    await pl.shutdown(5)


class _OrderedGates:
    """A writer whose Nth call blocks until ``release(N)``; records entries and completions."""

    def __init__(self) -> None:
        import threading

        self.entered: list[list[bytes]] = []
        self.done: list[int] = []
        self._gates = [threading.Event() for _ in range(10)]
        self._lock = threading.Lock()

    def release(self, n: int) -> None:
        self._gates[n].set()

    def write(self, payloads: object) -> None:
        with self._lock:
            n = len(self.entered)
            self.entered.append([p.body for p in payloads])  # type: ignore[attr-defined]
        self._gates[n].wait(30)
        with self._lock:
            self.done.append(n)


async def test_full_batches_insert_in_parallel_and_commit_in_order(tmp_path: Path) -> None:
    w = _OrderedGates()
    pl = Pipeline(_wal_cfg(tmp_path, batch_items=100, batch_min_items=1, insert_workers=2), w)  # type: ignore[arg-type]
    await pl.start()
    await pl.submit(payload(b"a0"))
    await until(lambda: len(w.entered) == 1)  # batch 0 = [a0], blocked
    await asyncio.gather(
        *(pl.submit(payload(b"b%02d" % i)) for i in range(25))
    )  # 250 items: full batches wait
    await until(lambda: len(w.entered) == 2)  # batch 1 read ahead and inserting beside batch 0
    assert w.entered[1] == [b"b%02d" % i for i in range(10)]
    w.release(1)  # batch 1 finishes first...
    await until(lambda: w.done == [1])
    await asyncio.sleep(0.1)
    assert pl.wal is not None and pl.wal.pending_items == 260  # ...but nothing is committed before batch 0
    for n in range(10):
        w.release(n)
    await until(lambda: pl.wal is not None and pl.wal.pending_items == 0)
    assert [b for call in w.entered for b in call] == [b"a0"] + [b"b%02d" % i for i in range(25)]
    await pl.shutdown(5)


async def test_backlogged_while_a_batch_waits_for_the_storage(tmp_path: Path) -> None:
    """What background work (the topology ingest job) yields to: a batch's worth waiting."""
    w = RecordingWriter()
    w.gate.clear()  # storage stuck
    pl = Pipeline(_wal_cfg(tmp_path, batch_min_items=20), w, registry=CollectorRegistry())
    await pl.start()
    assert not pl.backlogged()
    await pl.submit(payload(b"a"))  # 10 items: less than a batch
    assert not pl.backlogged()
    await pl.submit(payload(b"b"))  # 20: a batch waits
    assert pl.backlogged()
    w.gate.set()
    await until(lambda: not pl.backlogged())
    await pl.shutdown(5)
