"""The disk spool on real files: order, durability across reopen, torn tails, the size bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_ai.model import Payload
from otel_ai.pipeline.spool import HEADER_SIZE, PREALLOC_STEP, Spool, SpoolFull, encode_record


def _p(i: int, signal: str = "traces", size: int = 100) -> Payload:
    return Payload(signal, "protobuf", "http", bytes([i % 256]) * size, items=i + 1)  # type: ignore[arg-type]


def _drain(sp: Spool, max_items: int = 10**9) -> list[Payload]:
    out: list[Payload] = []
    while sp.has_pending():
        recs = sp.read_batch(max_items)
        if not recs:
            break
        out.extend(r.payload for r in recs)
        sp.commit(recs)
    return out


@pytest.mark.parametrize("preallocate", [True, False], ids=["preallocated", "plain"])
def test_append_then_replay_in_order_across_reopen(tmp_path: Path, preallocate: bool) -> None:
    # small segments: rotation (and, preallocated, the reuse of replayed segments) is exercised
    sp = Spool(tmp_path, 10**9, segment_bytes=1000, preallocate=preallocate)
    payloads = [_p(i) for i in range(25)]
    for i in range(0, 25, 5):
        sp.append(payloads[i : i + 5])
    record_bytes = sum(HEADER_SIZE + len(p.body) for p in payloads)
    assert sp.segments > 1 and sp.pending_items == sum(p.items for p in payloads)
    assert sp.bytes == record_bytes
    on_disk = sum(f.stat().st_size for f in tmp_path.glob("seg-*.spool"))
    assert on_disk > record_bytes if preallocate else on_disk == record_bytes
    sp.close()

    reopened = Spool(tmp_path, 10**9, segment_bytes=1000, preallocate=preallocate)
    reopened.open()
    assert reopened.pending_records == 25 and reopened.torn_records == 0
    assert reopened.bytes == record_bytes
    assert _drain(reopened) == payloads
    assert reopened.bytes == 0 and reopened.segments == 0 and not list(tmp_path.glob("seg-*"))
    assert len(list(tmp_path.glob("spare-*"))) == (1 if preallocate else 0)


def test_segments_are_zeroed_ahead_and_a_replayed_one_is_reused(tmp_path: Path) -> None:
    """Appends overwrite space the file already has; a replayed segment becomes the next one
    without new zeros, and what its earlier life left behind is never read back."""
    sp = Spool(tmp_path, 10**9, segment_bytes=2 * PREALLOC_STEP)
    sp.open()
    first = [_p(i, size=3000) for i in range(20)]
    sp.append(first)
    (seg,) = tmp_path.glob("seg-*.spool")
    assert seg.stat().st_size == PREALLOC_STEP  # zeros a step ahead, not the bytes appended
    inode = seg.stat().st_ino
    assert _drain(sp) == first
    (spare,) = tmp_path.glob("spare-*.spool")
    assert spare.stat().st_ino == inode

    later = [_p(50 + i, size=700) for i in range(3)]  # far shorter: old records follow them
    sp.append(later)
    (seg,) = tmp_path.glob("seg-*.spool")
    assert seg.stat().st_ino == inode and not list(tmp_path.glob("spare-*"))
    sp.close()
    reopened = Spool(tmp_path, 10**9, segment_bytes=2 * PREALLOC_STEP)
    reopened.open()
    assert reopened.torn_records == 0 and reopened.pending_records == 3
    assert _drain(reopened) == later


def test_a_version_1_segment_is_replayed_and_not_reused(tmp_path: Path) -> None:
    """Segments an older daemon wrote (18-byte headers, no segment number) still replay."""
    import struct
    import zlib

    def v1(p: Payload) -> bytes:
        head = struct.pack("<2sBBBBII", b"OS", 1, 0, 0, 1, p.items, len(p.body))
        return head + struct.pack("<I", zlib.crc32(p.body, zlib.crc32(head))) + p.body

    old = [_p(i) for i in range(4)]
    (tmp_path / "seg-000000000003.spool").write_bytes(b"".join(v1(p) for p in old))
    sp = Spool(tmp_path, 10**9)
    sp.open()
    assert sp.pending_records == 4
    sp.append([_p(9)])  # a new segment, in version 2
    assert _drain(sp) == [*old, _p(9)]
    (spare,) = tmp_path.glob("spare-*.spool")
    assert spare.name == "spare-000000000004.spool"  # the version 2 one; the old one is gone


def test_every_label_and_a_transcoded_body_survive_the_disk(tmp_path: Path) -> None:
    from itertools import product

    payloads = [
        Payload(sig, enc, tr, f"{sig}/{enc}/{tr}".encode(), items=3)  # type: ignore[arg-type]
        for sig, enc, tr in product(("traces", "metrics", "logs"), ("protobuf", "json"), ("grpc", "http"))
    ]
    # OTLP/JSON trace requests travel as the protobuf validation made of them
    payloads.append(Payload("traces", "json", "grpc", b"\n\x00", items=1, wire="protobuf"))
    sp = Spool(tmp_path, 10**9)
    sp.append(payloads)
    sp.close()
    reopened = Spool(tmp_path, 10**9)
    reopened.open()
    back = _drain(reopened)
    assert back == payloads
    assert (back[-1].encoding, back[-1].body_encoding) == ("json", "protobuf")
    assert all(p.wire is None for p in back[:-1])


def test_batches_hold_one_signal_and_respect_max_items(tmp_path: Path) -> None:
    sp = Spool(tmp_path, 10**9)
    sp.open()
    sp.append([_p(1, "traces"), _p(1, "traces"), _p(1, "logs"), _p(1, "traces")])
    batches: list[list[str]] = []
    while sp.has_pending():
        recs = sp.read_batch(3)
        batches.append([r.payload.signal for r in recs])
        sp.commit(recs)
    assert batches == [["traces"], ["traces"], ["logs"], ["traces"]]  # 2 items each, max 3


def test_batches_respect_max_bytes_but_always_hold_one_record(tmp_path: Path) -> None:
    sp = Spool(tmp_path, 10**9)
    sp.open()
    sp.append([_p(0, size=100), _p(0, size=100), _p(0, size=100), _p(0, size=500)])
    sizes: list[list[int]] = []
    while sp.has_pending():
        recs = sp.read_batch(10**9, max_bytes=250)
        sizes.append([len(r.payload.body) for r in recs])
        sp.commit(recs)
    assert sizes == [[100, 100], [100], [500]]  # a record bigger than the cap still goes alone


def test_partial_replay_resumes_from_cursor_after_restart(tmp_path: Path) -> None:
    sp = Spool(tmp_path, 10**9)
    sp.open()
    payloads = [_p(i) for i in range(6)]
    sp.append(payloads)
    sp.commit(sp.read_batch(5))  # items 1+2 = 3, then 3 would exceed 5
    sp.close()
    again = Spool(tmp_path, 10**9)
    again.open()
    assert _drain(again) == payloads[2:]


@pytest.mark.parametrize("preallocate", [True, False], ids=["preallocated", "plain"])
def test_torn_tail_is_detected_counted_and_cut_off(tmp_path: Path, preallocate: bool) -> None:
    sp = Spool(tmp_path, 10**9, preallocate=preallocate)
    sp.open()
    good = [_p(i) for i in range(3)]
    sp.append(good)
    sp.close()
    seg = next(tmp_path.glob("seg-*.spool"))
    end = 3 * (HEADER_SIZE + 100)
    torn = encode_record(_p(9, size=5000), 1)[: HEADER_SIZE + 100]  # crash in the middle of a record
    with open(seg, "r+b") as fh:
        fh.seek(end)
        fh.write(torn)

    again = Spool(tmp_path, 10**9, preallocate=preallocate)
    again.open()
    assert again.torn_records == 1 and again.bytes == end
    if not preallocate:
        assert seg.stat().st_size == end
    again.append([_p(7)])  # appends after the torn tail stay readable
    assert _drain(again) == [*good, _p(7)]


def test_corrupted_record_fails_checksum(tmp_path: Path) -> None:
    sp = Spool(tmp_path, 10**9)
    sp.open()
    sp.append([_p(1), _p(2)])
    sp.close()
    seg = next(tmp_path.glob("seg-*.spool"))
    data = bytearray(seg.read_bytes())
    data[2 * (HEADER_SIZE + 100) - 10] ^= 0xFF  # flip a byte in the second record's body
    seg.write_bytes(bytes(data))
    again = Spool(tmp_path, 10**9)
    again.open()
    assert again.torn_records == 1
    assert _drain(again) == [_p(1)]


def test_full_spool_refuses(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=3 * (HEADER_SIZE + 100))
    sp.open()
    sp.append([_p(1), _p(2)])
    with pytest.raises(SpoolFull, match="spool full"):
        sp.append([_p(3), _p(4)])
    sp.append([_p(5)])  # exactly fits
    assert [p.items for p in _drain(sp)] == [2, 3, 6]


@pytest.mark.parametrize("segment_bytes", [700, 64 * 1024], ids=["rotating", "one-segment"])
def test_a_reader_beside_an_appender_gets_every_record_once_in_order(
    tmp_path: Path, segment_bytes: int
) -> None:
    """The drainer reads and commits without the append lock: nothing is skipped or doubled."""
    import threading

    sp = Spool(tmp_path, 10**9, segment_bytes=segment_bytes)
    sp.open()
    payloads = [_p(i, size=50 + i % 7) for i in range(400)]
    got: list[Payload] = []
    done = threading.Event()

    def appender() -> None:
        for i in range(0, len(payloads), 4):
            sp.append(payloads[i : i + 4])
        done.set()

    t = threading.Thread(target=appender)
    t.start()
    while not (done.is_set() and not sp.has_pending()):
        recs = sp.read_batch(30)
        got.extend(r.payload for r in recs)
        sp.commit(recs)
    t.join()
    assert got == payloads
    assert sp.pending_items == 0 and sp.pending_records == 0
    sp.close()
    reopened = Spool(tmp_path, 10**9, segment_bytes=segment_bytes)
    reopened.open()
    assert not reopened.has_pending()  # the cursor covers everything read


def test_a_spare_that_carries_the_new_segments_number_is_not_reused(tmp_path: Path) -> None:
    """With the cursor gone, numbering starts again at 1: a spare left from segment 1 holds
    records that would read as the new segment's own, so it is deleted, not reused."""
    sp = Spool(tmp_path, 10**9)
    sp.open()
    old = [_p(i, size=900) for i in range(5)]
    sp.append(old)
    assert _drain(sp) == old
    sp.close()
    (tmp_path / "cursor").unlink()
    (spare,) = tmp_path.glob("spare-*.spool")
    assert spare.name == "spare-000000000001.spool"

    again = Spool(tmp_path, 10**9)
    again.open()
    again.append([_p(7, size=900)])  # the size of the old ones: reused, the next would parse
    again.close()
    third = Spool(tmp_path, 10**9)
    third.open()
    assert _drain(third) == [_p(7, size=900)]


@pytest.mark.parametrize("preallocate", [True, False], ids=["preallocated", "plain"])
def test_a_record_torn_while_running_is_skipped_and_nothing_stays_pending(
    tmp_path: Path, preallocate: bool
) -> None:
    """A record damaged on disk after its append: the reader counts it torn, hands over the rest
    before it, and once its segment is gone nothing is left pending (a drainer would spin)."""
    sp = Spool(tmp_path, 10**9, preallocate=preallocate)
    sp.open()
    sp.append([_p(1), _p(2), _p(3)])
    seg = next(tmp_path.glob("seg-*.spool"))
    with open(seg, "r+b") as fh:
        fh.seek(3 * (HEADER_SIZE + 100) - 10)  # the third record's body
        fh.write(b"\xff")
    assert _drain(sp) == [_p(1), _p(2)]
    assert sp.torn_records == 1
    sp.commit(sp.read_batch(10))  # the reader's next look drops the emptied segment
    assert not sp.has_pending() and sp.pending_items == 0 and sp.segments == 0
