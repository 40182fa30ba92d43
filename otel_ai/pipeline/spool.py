"""Durable disk spool: what could not be inserted is appended here, fsynced, then acked.

Layout: ``<spool_dir>/seg-<n>.spool`` append-only segment files, replayed oldest first, plus
``cursor`` (segment number and byte offset already replayed, replaced atomically). A record is::

    magic b"OS" | version u8 | signal u8 | encoding u8 | transport u8 | items u32 | body_len u32
    | crc32 u32 (over the 14 header bytes before it and the body) | body

``encoding`` is the client's (0 protobuf, 1 json) plus 0x80 when the body was transcoded to
protobuf at validation (``Payload.wire``; OTLP/JSON trace requests).

A record whose checksum does not match, or that is cut short (a crash while appending), is a torn
record: it is counted and skipped, and a torn tail of the newest segment is truncated away at
start so later appends stay readable. Replay is at-least-once: a crash between an insert and the
cursor update replays that record again (OTLP accepts duplicates by design, spec §1.1).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from otel_ai.errors import OverloadedError, StorageError
from otel_ai.model import ENCODINGS, SIGNALS, TRANSPORTS, Payload

log = logging.getLogger(__name__)

MAGIC = b"OS"
VERSION = 1
_HEAD = struct.Struct("<2sBBBBII")  # magic, version, signal, encoding, transport, items, body_len
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + _CRC.size
SEGMENT_BYTES = 64 * 1024 * 1024
_SIG = {s: i for i, s in enumerate(SIGNALS)}
_ENC = {s: i for i, s in enumerate(ENCODINGS)}
_TRA = {s: i for i, s in enumerate(TRANSPORTS)}
_TRANSCODED = 0x80  # encoding flag: the body is protobuf whatever the client sent


class SpoolFull(OverloadedError):
    """``spool_max_bytes`` reached: the request must be refused (503) rather than lost."""


def encode_record(p: Payload) -> bytes:
    head = _HEAD.pack(
        MAGIC,
        VERSION,
        _SIG[p.signal],
        _ENC[p.encoding] | (_TRANSCODED if p.wire == "protobuf" and p.encoding != "protobuf" else 0),
        _TRA[p.transport],
        p.items,
        len(p.body),
    )
    crc = zlib.crc32(p.body, zlib.crc32(head))
    return b"".join((head, _CRC.pack(crc), p.body))


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    segment: int
    end_offset: int  # byte offset just after this record: the cursor once it is replayed
    payload: Payload


def _segment_name(n: int) -> str:
    return f"seg-{n:012d}.spool"


class Spool:
    """Thread-safe append/replay over segment files. ``append`` returns only after ``fsync``."""

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, *, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.dir = Path(directory).resolve()
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._segments: dict[int, int] = {}  # segment number → size in bytes
        self._bytes = 0
        self._cursor = (0, 0)
        self._active_fd: int | None = None
        self.torn_records = 0
        self.pending_records = 0
        self.pending_items = 0

    # -- open / recover ---------------------------------------------------------------------
    def open(self) -> None:
        """Create the directory, load the cursor and scan segments, truncating a torn tail."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            seg, off = (self.dir / "cursor").read_text().split()
            self._cursor = (int(seg), int(off))
        except (OSError, ValueError):
            self._cursor = (0, 0)
        numbers = sorted(int(p.name[4:16]) for p in self.dir.glob("seg-*.spool") if p.name[4:16].isdigit())
        for n in numbers:
            if n < self._cursor[0]:  # fully replayed before a crash; the delete did not happen
                (self.dir / _segment_name(n)).unlink(missing_ok=True)
                continue
            path = self.dir / _segment_name(n)
            start = self._cursor[1] if n == self._cursor[0] else 0
            good_end, records, items, torn = self._scan(path, start)
            size = path.stat().st_size
            if torn:
                self.torn_records += torn
                log.warning(
                    "spool: %s has a torn record at byte %d; skipped the rest (%d bytes)",
                    path.name,
                    good_end,
                    size - good_end,
                )
                with open(path, "r+b") as fh:
                    fh.truncate(good_end)
                    os.fsync(fh.fileno())
                size = good_end
            self._segments[n] = size
            self._bytes += size
            self.pending_records += records
            self.pending_items += items

    @staticmethod
    def _scan(path: Path, start: int) -> tuple[int, int, int, int]:
        """Return (offset after the last good record, good records, items, torn records)."""
        records = items = 0
        with open(path, "rb") as fh:
            fh.seek(start)
            offset = start
            while True:
                head = fh.read(HEADER_SIZE)
                if not head:
                    return offset, records, items, 0
                rec = _parse(head, fh)
                if rec is None:
                    return offset, records, items, 1
                offset += HEADER_SIZE + len(rec.body)
                records += 1
                items += rec.items

    # -- append -------------------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        return self._bytes  # a counter, so metric scrapes never iterate a dict being changed

    @property
    def segments(self) -> int:
        return len(self._segments)

    def has_pending(self) -> bool:
        return self.pending_records > 0

    def append(self, payloads: Sequence[Payload]) -> None:
        """Append records and fsync them; raise :class:`SpoolFull` past ``max_bytes``."""
        data = b"".join(encode_record(p) for p in payloads)
        with self._lock:
            if self.bytes + len(data) > self.max_bytes:
                raise SpoolFull(f"spool full ({self.bytes} of {self.max_bytes} bytes used)")
            fd = self._active(len(data))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                raise StorageError(f"spool write failed: {exc}", retryable=True) from exc
            last = max(self._segments)
            self._segments[last] += len(data)
            self._bytes += len(data)
            self.pending_records += len(payloads)
            self.pending_items += sum(p.items for p in payloads)

    def _active(self, incoming: int) -> int:
        if self._active_fd is not None:
            last = max(self._segments)
            if self._segments[last] + incoming <= self.segment_bytes or self._segments[last] == 0:
                return self._active_fd
            os.close(self._active_fd)
            self._active_fd = None
        # Always a number past the cursor's segment, so a restart never applies an old offset to it.
        n = max(max(self._segments, default=0), self._cursor[0]) + 1
        path = self.dir / _segment_name(n)
        self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if n not in self._segments:
            size = os.fstat(self._active_fd).st_size
            self._segments[n] = size
            self._bytes += size
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return self._active_fd

    # -- replay -------------------------------------------------------------------------------
    # One reader (a drainer) reads and commits while appends go on. Appends only ever add bytes
    # past a segment's known size, so the reader reads and parses below the sizes it saw, and
    # writes the cursor, without the append lock: an append never waits for a batch being read
    # or for the cursor's fsync (both stall behind the engine's disk writes at times).
    def read_batch(
        self, max_items: int, max_bytes: int | None = None, after: SpoolRecord | None = None
    ) -> list[SpoolRecord]:
        """The oldest pending records, all of one signal, up to ``max_items`` and ``max_bytes`` of
        bodies (at least one record).

        ``after`` reads ahead: the records that follow that one (read but not yet committed), so a
        second batch can be inserted while the first one is; commits still go in order.
        """
        with self._lock:
            head = (after.segment, after.end_offset) if after is not None else self._cursor
            segments = sorted((n, size) for n, size in self._segments.items() if n >= head[0])
        out: list[SpoolRecord] = []
        total = size_total = 0
        byte_cap = max_bytes if max_bytes is not None else 1 << 62
        for n, size in segments:
            start = head[1] if n == head[0] else 0
            with open(self.dir / _segment_name(n), "rb") as fh:
                fh.seek(start)
                offset = start
                while offset < size:
                    rec = _parse(fh.read(HEADER_SIZE), fh)
                    if rec is None:  # appeared torn while running: count and skip the rest
                        with self._lock:
                            self.torn_records += 1
                            self._bytes -= self._segments[n] - offset
                            self._segments[n] = offset
                        break
                    if out and (
                        rec.signal != out[0].payload.signal
                        or total + rec.items > max_items
                        or size_total + len(rec.body) > byte_cap
                    ):
                        return out
                    offset += HEADER_SIZE + len(rec.body)
                    out.append(SpoolRecord(n, offset, rec))
                    total += rec.items
                    size_total += len(rec.body)
            if out:
                return out  # one segment per batch keeps the cursor simple
            if after is None:
                with self._lock:
                    # read to its end: drop it, unless appends went on in it meanwhile
                    if self._segments.get(n) == size:
                        self._drop_segment(n)
                    else:
                        return out
        return out

    def commit(self, records: Sequence[SpoolRecord]) -> None:
        """Mark records replayed: advance the cursor (atomically) and delete finished segments."""
        if not records:
            return
        last = records[-1]
        tmp = self.dir / "cursor.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{last.segment} {last.end_offset}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / "cursor")
        with self._lock:
            self._cursor = (last.segment, last.end_offset)
            self.pending_records -= len(records)
            self.pending_items -= sum(r.payload.items for r in records)
            if last.end_offset >= self._segments.get(last.segment, 0):
                self._drop_segment(last.segment)

    def _drop_segment(self, n: int) -> None:
        if n == max(self._segments) and self._active_fd is not None:
            os.close(self._active_fd)
            self._active_fd = None
        self._bytes -= self._segments.pop(n, 0)
        (self.dir / _segment_name(n)).unlink(missing_ok=True)
        if not self._segments:
            self.pending_records = self.pending_items = 0

    def close(self) -> None:
        with self._lock:
            if self._active_fd is not None:
                os.close(self._active_fd)
                self._active_fd = None


def _parse(head: bytes, fh: object) -> Payload | None:
    """Decode one record from its header and the file positioned after it; None when torn."""
    if len(head) < HEADER_SIZE:
        return None
    magic, version, sig, enc, tra, items, body_len = _HEAD.unpack_from(head)
    transcoded, enc = enc & _TRANSCODED, enc & ~_TRANSCODED
    if (
        magic != MAGIC
        or version != VERSION
        or sig >= len(SIGNALS)
        or enc >= len(ENCODINGS)
        or tra >= len(TRANSPORTS)
    ):
        return None
    body = fh.read(body_len)  # type: ignore[attr-defined]
    if len(body) != body_len:
        return None
    (crc,) = _CRC.unpack_from(head, _HEAD.size)
    if zlib.crc32(body, zlib.crc32(head[: _HEAD.size])) != crc:
        return None
    return Payload(
        SIGNALS[sig], ENCODINGS[enc], TRANSPORTS[tra], body, items, wire="protobuf" if transcoded else None
    )
