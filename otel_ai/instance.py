"""One daemon per store and per spool: where the spool lives by default, and the locks that say so.

The spool (``pipeline.spool_dir``) holds requests already acknowledged and not yet inserted: it
belongs to one store. By default it therefore lives beside the store, not in the working
directory: for ``chdb:///x/data/clickhouse`` it is ``/x/data/spool``; for a server DSN it is
``./data/spool-<host>-<port>-<database>`` (one per instance and store).

Both are claimed at start with an exclusive ``flock`` on a lock file holding the owner's pid
(``<store>.lock`` beside an embedded store, ``<spool>/lock``): a second daemon on the same store or
spool exits with one line naming the directory and the other pid, instead of replaying the first
one's acknowledged data into its own store. The kernel drops the lock when the process dies
(``kill -9`` included), so a stale lock file never blocks a restart. Within one process daemons
share an embedded store (as chDB itself does; tests run several) but never a spool.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from otel_ai.errors import InstanceLocked

_lock = threading.Lock()
_held: dict[Path, tuple[int, int]] = {}  # shared locks of this process: path → (fd, users)


def default_spool_dir(dsn: str, database: str, cwd: Path | None = None) -> Path:
    """The spool directory of a store: beside an embedded one, per server and database otherwise."""
    from otel_ai.storage.client import normalize_dsn

    base = cwd or Path.cwd()
    dsn = normalize_dsn(dsn, base)
    if dsn.startswith("chdb:"):
        store = Path(dsn[len("chdb://") :])
        return store.parent / "spool"
    parts = urlsplit(dsn)
    db = parts.path.strip("/") or database
    name = "-".join(x for x in (parts.hostname or "server", str(parts.port or ""), db) if x)
    return (base / "data" / f"spool-{name}").resolve()


def store_lock_path(dsn: str) -> Path | None:
    """The lock file of an embedded store (None for a server: the server arbitrates itself)."""
    from otel_ai.storage.client import normalize_dsn

    dsn = normalize_dsn(dsn)
    if not dsn.startswith("chdb:"):
        return None
    store = Path(dsn[len("chdb://") :])
    return store.parent / f"{store.name}.lock"


class Claim:
    """An exclusive claim on a directory through ``lock_file``; ``release`` is idempotent."""

    def __init__(self, what: str, directory: Path, lock_file: Path, *, shared_in_process: bool) -> None:
        self.what = what
        self.directory = directory.resolve()
        self.lock_file = lock_file.resolve()
        self.shared = shared_in_process
        self._fd: int | None = None

    def acquire(self, hint: str) -> Claim:
        """Take the lock or raise :class:`InstanceLocked` (one line: what, where, who, what to do)."""
        with _lock:
            if self.shared and self.lock_file in _held:
                fd, users = _held[self.lock_file]
                _held[self.lock_file] = (fd, users + 1)
                self._fd = fd
                return self
            self.lock_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"pid {holder}" if holder else "another process"
                raise InstanceLocked(
                    f"the {self.what} {self.directory} is in use by another otel-ai ({who}); "
                    f"stop it or {hint}"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            if self.shared:
                _held[self.lock_file] = (fd, 1)
            self._fd = fd
            return self

    def release(self) -> None:
        with _lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if self.shared:
                _, users = _held.get(self.lock_file, (fd, 1))
                if users > 1:
                    _held[self.lock_file] = (fd, users - 1)
                    return
                _held.pop(self.lock_file, None)
            with contextlib.suppress(OSError):
                os.close(fd)  # closing drops the flock; the file stays (removing it would race)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def claim_store(dsn: str) -> Claim | None:
    """Lock an embedded store against a second process (None for a server DSN)."""
    from otel_ai.storage.client import normalize_dsn

    lock = store_lock_path(dsn)
    if lock is None:
        return None
    store = Path(normalize_dsn(dsn)[len("chdb://") :])
    claim = Claim("store", store, lock, shared_in_process=True)
    return claim.acquire("pass --storage chdb:///another/path")


def claim_spool(directory: str | os.PathLike[str]) -> Claim:
    """Lock a spool directory against any other daemon, in this process or another."""
    path = Path(directory)
    claim = Claim("spool", path, path / "lock", shared_in_process=False)
    return claim.acquire("set pipeline.spool_dir (OTEL_AI_PIPELINE__SPOOL_DIR) to another directory")


def claim_instance(config: Any) -> list[Claim]:
    """Claim what a daemon of ``config`` uses: its embedded store, and its spool if it ingests.

    Fills ``pipeline.spool_dir`` with its default (beside the store) when unset.
    """
    if config.pipeline.spool_dir is None:
        config.pipeline.spool_dir = str(default_spool_dir(config.storage.dsn, config.storage.database))
    store = claim_store(config.storage.dsn)
    claims = [store] if store is not None else []
    if config.server.role in ("all", "ingest") and config.server.receivers_enabled:
        try:
            claims.append(claim_spool(config.pipeline.spool_dir))
        except BaseException:
            for c in claims:
                c.release()
            raise
    return claims
