"""The one gateway to ClickHouse: embedded chDB (``chdb:///abs/path``) or a server (``http(s)://``).

Foreign exceptions from clickhouse-connect/chDB are translated here into
:class:`~otel_ai.errors.StorageError` (retryable when the server is unreachable), so no other
module catches driver exceptions. SQL is always parameterised (``parameters=``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from otel_ai.errors import StorageError
from otel_ai.storage import migrations
from otel_ai.storage.config import StorageConfig
from otel_ai.storage.dsn import normalize_dsn, redact_dsn
from otel_ai.storage.schema import CORE_MIGRATIONS, Migration, SchemaContext

log = logging.getLogger(__name__)


def _translate(exc: Exception, what: str) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    retryable = isinstance(exc, OperationalError | ConnectionError | TimeoutError | OSError)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"{what} failed: {text}", retryable=retryable)


class _HandlePool:
    """chDB connection handles for one data path, shared by every :class:`Storage` on it.

    clickhouse-connect serialises every call on one client behind a lock, so a single shared
    client would run the insert workers, the analyzers and the API one query at a time; chDB
    allows many handles on one engine. Handles are opened one at a time, lazily, up to ``size``;
    a caller past that waits for one to come back.
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: list[Client] = []
        self._count = 0  # opened or being opened
        self._cond = threading.Condition()
        self._open_lock = threading.Lock()

    def checkout(self, open_client: Any) -> Client:
        with self._cond:
            while not self._idle and self._count >= self.size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            with self._open_lock:
                return cast(Client, open_client())
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def checkin(self, client: Client) -> None:
        with self._cond:
            self._idle.append(client)
            self._cond.notify()


_POOLS: dict[str, _HandlePool] = {}
_POOLS_LOCK = threading.Lock()


def _embedded_pool(dsn: str, size: int) -> _HandlePool:
    with _POOLS_LOCK:
        pool = _POOLS.get(dsn)
        if pool is None:
            pool = _POOLS[dsn] = _HandlePool(size)
        return pool


class Storage:
    """A thread-safe handle on one ClickHouse database, configured by the ``storage`` section.

    ``embedded`` tells whether this is chDB (one path per process: an embedded engine owns its
    directory).
    """

    def __init__(self, config: StorageConfig, *, pool_size: int = 6) -> None:
        self.config = config
        self.dsn = normalize_dsn(config.dsn)
        self.embedded = self.dsn.startswith("chdb:")
        database = config.database
        parts = urlsplit(self.dsn)
        if not self.embedded and parts.path.strip("/"):
            database = parts.path.strip("/")
        self.database = database
        self.ctx = SchemaContext(
            database=database,
            cluster=config.cluster,
            ttl_days=config.ttl_days,
            replication_path=config.replication_path,
        )
        self.merge_tree_settings = dict(config.merge_tree_settings)
        self.defer_attribute_indexes = config.defer_attribute_indexes
        # Settings every telemetry INSERT carries (see insert_settings); decided in start().
        self.insert_settings: dict[str, str] = {}
        self._connect_timeout = config.connect_timeout_s
        self._query_timeout = config.query_timeout_s
        # Embedded: a pool of chDB connection handles shared by every Storage on this path in
        # the process (see _HandlePool). Remote: one HTTP client (thread-safe, pooled sockets).
        self._pool = _embedded_pool(self.dsn, pool_size) if self.embedded else None
        self._remote: Client | None = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def redacted_dsn(self) -> str:
        return redact_dsn(self.dsn)

    @property
    def scratch_dir(self) -> Path | None:
        """Where the files the embedded engine reads with ``FROM INFILE`` are written: beside its
        data (``<path>-scratch``), not in the system temp dir. ``None`` for a server."""
        if not self.embedded:
            return None
        path = Path(self.dsn[len("chdb://") :])
        return path.parent / f"{path.name}-scratch"

    def _open(self) -> Client:
        try:
            if self.embedded:
                Path(self.dsn[len("chdb://") :]).mkdir(parents=True, exist_ok=True)
                return clickhouse_connect.get_client(dsn=self.dsn)
            parts = urlsplit(self.dsn)
            base = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
            return clickhouse_connect.get_client(
                dsn=base,
                connect_timeout=self._connect_timeout,
                send_receive_timeout=self._query_timeout,
                autogenerate_session_id=False,
            )
        except Exception as exc:
            raise _translate(exc, f"connecting to {self.redacted_dsn}") from exc

    @contextmanager
    def _connect(self) -> Iterator[Client]:
        """A client for one call: a pooled chDB handle (embedded) or the shared HTTP client."""
        if self._pool is None:
            with self._lock:
                if self._remote is None:
                    self._remote = self._open()
                client = self._remote
            yield client
            return
        client = self._pool.checkout(self._open)
        try:
            yield client
        finally:
            self._pool.checkin(client)

    def start(self) -> None:
        """Connect, create the database and apply the core migrations (idempotent)."""
        self.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`{self.ctx.on_cluster}")
        self.apply_migrations("core", CORE_MIGRATIONS)
        migrations.sync_ttl(self)
        self.insert_settings = migrations.telemetry_insert_settings(self)

    def insert_settings_clause(self) -> str:
        """`` SETTINGS …`` for an INSERT into a telemetry table ('' when there is none)."""
        if not self.insert_settings:
            return ""
        return " SETTINGS " + ", ".join(
            f"{k} = {migrations.setting_literal(v)}" for k, v in self.insert_settings.items()
        )

    def shutdown(self) -> None:
        # chDB handles stay open in their process-wide pool: the embedded engine lives for the
        # process, and closing its last handle would forbid reopening the path.
        with self._lock:
            client, self._remote = self._remote, None
        if client is not None:
            try:
                client.close()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.debug("closing the ClickHouse client failed", exc_info=True)

    def ping(self) -> bool:
        try:
            self.query("SELECT 1")
            return True
        except StorageError:
            return False

    def release_memory(self) -> bool:
        """Embedded: have the engine's allocator return the pages it freed to the OS.

        False for a ClickHouse server, which manages its own memory (its MemoryWorker purges).
        """
        if not self.embedded:
            return False
        self.command("SYSTEM JEMALLOC PURGE")
        return True

    # -- queries --------------------------------------------------------------------------------
    def command(
        self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            with self._connect() as client:
                return client.command(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))
        except Exception as exc:
            raise _translate(exc, "command") from exc

    def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows of a parameterised query."""
        try:
            with self._connect() as client:
                result = client.query(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))
        except Exception as exc:
            raise _translate(exc, "query") from exc
        return [tuple(r) for r in result.result_rows]

    def query_dicts(
        self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of a parameterised query as dicts keyed by column name."""
        try:
            with self._connect() as client:
                result = client.query(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))
        except Exception as exc:
            raise _translate(exc, "query") from exc
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        *,
        column_oriented: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            with self._connect() as client:
                client.insert(
                    table,
                    data,
                    column_names=list(column_names),
                    database=self.database,
                    column_oriented=column_oriented,
                    settings=dict(settings or {}),
                )
        except Exception as exc:
            raise _translate(exc, f"insert into {table}") from exc

    def raw_insert(
        self,
        table: str,
        data: bytes,
        fmt: str,
        *,
        column_names: Sequence[str] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert ``data`` already encoded in ClickHouse input format ``fmt``."""
        try:
            with self._connect() as client:
                client.raw_insert(
                    f"`{self.database}`.`{table}`",
                    column_names=list(column_names) if column_names else None,
                    insert_block=data,
                    settings=dict(settings or {}),
                    fmt=fmt,
                )
        except Exception as exc:
            raise _translate(exc, f"insert into {table}") from exc

    # -- migrations -----------------------------------------------------------------------------
    def apply_migrations(self, component: str, migrations_: Iterable[Migration]) -> list[int]:
        """Apply the not-yet-applied migrations of ``component`` in version order; return them
        (see :mod:`otel_ai.storage.migrations`)."""
        return migrations.apply_migrations(self, component, migrations_)
