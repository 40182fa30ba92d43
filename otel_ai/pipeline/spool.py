"""Durable disk spool: what could not be inserted is appended here, fsynced, then acked.

Layout: ``<spool_dir>/seg-<n>.spool`` segment files written front to back, replayed oldest first,
plus ``cursor`` (segment number and byte offset already replayed, replaced atomically) and at most
one ``spare-<n>.spool`` (a replayed segment kept for reuse). A record is::

    magic b"OS" | version u8 | signal u8 | encoding u8 | transport u8 | items u32 | body_len u32
    | segment u64 | crc32 u32 (over the 22 header bytes before it and the body) | body

Version 1 records (no ``segment`` field, 18-byte header) are still read: a segment holds records
of one version, the one its first record has.

Preallocation (``pipeline.spool_preallocate``, on by default): a segment's file is written full of
zeros ahead of the appends (4 MiB at a time) and each append is a ``pwrite`` + ``fdatasync`` into
space the file already has. Growing a file changes its size, and on ext4 that makes every fsync a
journal commit, which waits behind whatever else goes to the disk (ClickHouse's parts and merges);
an overwrite needs no metadata. A replayed segment is renamed to the spare and becomes the next
segment without being zeroed again, so the zeros are written once per segment, not once per use.
What lies past a segment's last record is then zeros or an earlier life's records, which carry
another segment number: reading stops there, as at the end of a file.

``encoding`` is the client's (0 protobuf, 1 json) plus 0x80 when the body was transcoded to
protobuf at validation (``Payload.wire``; OTLP/JSON trace requests).

A record whose checksum does not match, or that is cut short (a crash while appending), is a torn
record: it is counted and skipped, and a torn tail of the newest segment is truncated away at
start so later appends stay readable. Replay is at-least-once: a crash between an insert and the
cursor update replays that record again (OTLP accepts duplicates by design, spec §1.1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from otel_ai.errors import OverloadedError, StorageError
from otel_ai.model import ENCODINGS, SIGNALS, TRANSPORTS, Payload

log = logging.getLogger(__name__)

MAGIC = b"OS"
VERSION = 2
_HEAD_V1 = struct.Struct("<2sBBBBII")  # magic, version, signal, encoding, transport, items, body_len
_SEGMENT = struct.Struct("<Q")  # version 2: the segment the record was written to
_CRC = struct.Struct("<I")
HEADER_SIZE_V1 = _HEAD_V1.size + _CRC.size
HEADER_SIZE = _HEAD_V1.size + _SEGMENT.size + _CRC.size
SEGMENT_BYTES = 64 * 1024 * 1024
PREALLOC_STEP = 4 * 1024 * 1024  # zeros written ahead of the appends at a time
_ZEROS = bytes(1024 * 1024)
_SIG = {s: i for i, s in enumerate(SIGNALS)}
_ENC = {s: i for i, s in enumerate(ENCODINGS)}
_TRA = {s: i for i, s in enumerate(TRANSPORTS)}
_TRANSCODED = 0x80  # encoding flag: the body is protobuf whatever the client sent


class SpoolFull(OverloadedError):
    """``spool_max_bytes`` reached: the request must be refused (503) rather than lost."""


def encode_record(p: Payload, segment: int) -> bytes:
    head = _HEAD_V1.pack(
        MAGIC,
        VERSION,
        _SIG[p.signal],
        _ENC[p.encoding] | (_TRANSCODED if p.wire == "protobuf" and p.encoding != "protobuf" else 0),
        _TRA[p.transport],
        p.items,
        len(p.body),
    ) + _SEGMENT.pack(segment)
    crc = zlib.crc32(p.body, zlib.crc32(head))
    return b"".join((head, _CRC.pack(crc), p.body))


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    segment: int
    end_offset: int  # byte offset just after this record: the cursor once it is replayed
    payload: Payload


def _segment_name(n: int) -> str:
    return f"seg-{n:012d}.spool"


def _spare_name(n: int) -> str:
    return f"spare-{n:012d}.spool"


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


class Spool:
    """Thread-safe append/replay over segment files. ``append`` returns only after ``fsync``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        preallocate: bool = True,
    ) -> None:
        self.dir = Path(directory).resolve()
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.preallocate = preallocate
        self._lock = threading.Lock()
        self._segments: dict[int, int] = {}  # segment number → bytes of records in it
        self._bytes = 0
        self._cursor = (0, 0)
        self._active_fd: int | None = None
        self._allocated = 0  # the active segment's file size: appends below it change no metadata
        self._spare: Path | None = None
        self._v1: set[int] = set()  # segments an older daemon wrote (version 1 records); never reused
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
        spares = sorted(self.dir.glob("spare-*.spool"))
        for extra in spares[:-1] if self.preallocate else spares:
            extra.unlink(missing_ok=True)
        self._spare = spares[-1] if spares and self.preallocate else None
        numbers = sorted(int(p.name[4:16]) for p in self.dir.glob("seg-*.spool") if p.name[4:16].isdigit())
        for n in numbers:
            if n < self._cursor[0]:  # fully replayed before a crash; the delete did not happen
                (self.dir / _segment_name(n)).unlink(missing_ok=True)
                continue
            path = self.dir / _segment_name(n)
            start = self._cursor[1] if n == self._cursor[0] else 0
            with open(path, "rb") as fh:
                if _segment_version(fh) == 1:
                    self._v1.add(n)
            good_end, records, items, torn = self._scan(path, n, self._version(n), start)
            file_size = path.stat().st_size
            if torn:
                self.torn_records += torn
                log.warning(
                    "spool: %s has a torn record at byte %d; skipped the rest (%d bytes)",
                    path.name,
                    good_end,
                    file_size - good_end,
                )
            if file_size > good_end and not self.preallocate:
                with open(path, "r+b") as fh:  # what follows the last record goes
                    fh.truncate(good_end)
                    os.fsync(fh.fileno())
            size = good_end  # appends never go to a segment found at start: a new one is begun
            self._segments[n] = size
            self._bytes += size
            self.pending_records += records
            self.pending_items += items

    def _version(self, n: int) -> int:
        return 1 if n in self._v1 else VERSION

    @staticmethod
    def _scan(path: Path, n: int, version: int, start: int) -> tuple[int, int, int, int]:
        """Return (offset after the last good record, good records, items, torn records)."""
        records = items = 0
        with open(path, "rb") as fh:
            fh.seek(start)
            offset = start
            while True:
                rec = _parse(fh, n, version)
                if rec is _END:
                    return offset, records, items, 0
                if rec is None:
                    return offset, records, items, 1
                assert isinstance(rec, Payload)
                offset += _header_size(version) + len(rec.body)
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
        incoming = sum(HEADER_SIZE + len(p.body) for p in payloads)
        with self._lock:
            if self.bytes + incoming > self.max_bytes:
                raise SpoolFull(f"spool full ({self.bytes} of {self.max_bytes} bytes used)")
            try:
                fd, last = self._active(incoming)
                data = b"".join(encode_record(p, last) for p in payloads)
                offset = self._segments[last]
                end = offset + len(data)
                if self.preallocate and end > self._allocated:
                    self._zero_fill(fd, end)
                _pwrite_all(fd, data, offset)
                if self.preallocate:
                    os.fdatasync(fd)
                else:
                    os.fsync(fd)
                self._allocated = max(self._allocated, end)
            except OSError as exc:
                raise StorageError(f"spool write failed: {exc}", retryable=True) from exc
            self._segments[last] += len(data)
            self._bytes += len(data)
            self.pending_records += len(payloads)
            self.pending_items += sum(p.items for p in payloads)

    def _active(self, incoming: int) -> tuple[int, int]:
        """The segment to append to (file descriptor, number), begun when needed."""
        if self._active_fd is not None:
            last = max(self._segments)
            if self._segments[last] + incoming <= self.segment_bytes or self._segments[last] == 0:
                return self._active_fd, last
            os.close(self._active_fd)
            self._active_fd = None
        # Always a number past the cursor's segment, so a restart never applies an old offset to it.
        n = max(max(self._segments, default=0), self._cursor[0]) + 1
        path = self.dir / _segment_name(n)
        spare, self._spare = self._spare, None
        if spare is not None and spare.name != _spare_name(n):  # its records carry another number
            os.replace(spare, path)
            self._active_fd = os.open(path, os.O_WRONLY, 0o600)
        else:
            if spare is not None:
                spare.unlink(missing_ok=True)
            self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._allocated = os.fstat(self._active_fd).st_size
        self._segments[n] = 0
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return self._active_fd, n

    def _zero_fill(self, fd: int, end: int) -> None:
        """Write zeros past ``end``, where the records about to be written stop (a step at a
        time, up to the segment's size); fdatasync follows with the records."""
        target = max(end, min(self._allocated + PREALLOC_STEP, self.segment_bytes))
        offset = max(self._allocated, end)
        while offset < target:
            n = min(len(_ZEROS), target - offset)
            _pwrite_all(fd, memoryview(_ZEROS)[:n], offset)
            offset += n
        self._allocated = target

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
            version = self._version(n)
            with open(self.dir / _segment_name(n), "rb") as fh:
                fh.seek(start)
                offset = start
                while offset < size:
                    rec = _parse(fh, n, version)
                    if not isinstance(rec, Payload):  # appeared torn while running: count, skip the rest
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
                    offset += _header_size(version) + len(rec.body)
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
        self._recycle_or_delete(n)
        if not self._segments:
            self.pending_records = self.pending_items = 0

    def _recycle_or_delete(self, n: int) -> None:
        """Keep a replayed segment as the spare (one at most, never a version 1 one), else delete it."""
        path = self.dir / _segment_name(n)
        if self.preallocate and self._spare is None and n not in self._v1:
            spare = self.dir / _spare_name(n)
            with contextlib.suppress(OSError):
                os.replace(path, spare)
                self._spare = spare
                return
        path.unlink(missing_ok=True)
        self._v1.discard(n)

    def close(self) -> None:
        with self._lock:
            if self._active_fd is not None:
                os.close(self._active_fd)
                self._active_fd = None


_END = object()  # no record here: the segment's records end (end of file, zeros, an earlier life)


def _header_size(version: int) -> int:
    return HEADER_SIZE_V1 if version == 1 else HEADER_SIZE


def _segment_version(fh: BinaryIO) -> int:
    """The record version of a segment found at start (its first record's), 2 when it has none."""
    head = fh.read(3)
    return 1 if len(head) == 3 and head[:2] == MAGIC and head[2] == 1 else VERSION


def _parse(fh: BinaryIO, segment: int, version: int) -> Payload | object | None:
    """Decode the record at the file's position: a payload, ``_END`` or None (torn)."""
    size = _header_size(version)
    head = fh.read(size)
    if not head or (version == 2 and (len(head) < size or not any(head))):
        return _END
    if len(head) < size:
        return None
    magic, ver, sig, enc, tra, items, body_len = _HEAD_V1.unpack_from(head)
    if (
        version == 2
        and magic == MAGIC
        and ver == 2
        and _SEGMENT.unpack_from(head, _HEAD_V1.size)[0] != segment
    ):
        return _END  # a record of the segment this file was before it was reused
    transcoded, enc = enc & _TRANSCODED, enc & ~_TRANSCODED
    if (
        magic != MAGIC
        or ver != version
        or sig >= len(SIGNALS)
        or enc >= len(ENCODINGS)
        or tra >= len(TRANSPORTS)
    ):
        return None
    body = fh.read(body_len)
    if len(body) != body_len:
        return None
    (crc,) = _CRC.unpack_from(head, size - _CRC.size)
    if zlib.crc32(body, zlib.crc32(head[: size - _CRC.size])) != crc:
        return None
    return Payload(
        SIGNALS[sig], ENCODINGS[enc], TRANSPORTS[tra], body, items, wire="protobuf" if transcoded else None
    )
