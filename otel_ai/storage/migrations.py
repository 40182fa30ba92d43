"""Schema upkeep on a :class:`~otel_ai.storage.client.Storage`: append-only migrations per
component, and the table settings that follow the config on every start (TTL, MergeTree
settings, the attribute indexes deferred to merges)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from otel_ai.errors import StorageError
from otel_ai.storage.schema import MIGRATIONS_TABLE, TTL_TABLES, Migration

if TYPE_CHECKING:  # the client calls in here; only its type is needed
    from otel_ai.storage.client import Storage

log = logging.getLogger(__name__)


def apply_migrations(storage: Storage, component: str, migrations: Iterable[Migration]) -> list[int]:
    """Apply the not-yet-applied migrations of ``component`` in version order; return them."""
    db = f"`{storage.database}`"
    storage.command(
        f"CREATE TABLE IF NOT EXISTS {db}.`{MIGRATIONS_TABLE}`{storage.ctx.on_cluster} ("
        " Component LowCardinality(String), Version UInt32, Name String,"
        " AppliedAt DateTime64(3) DEFAULT now64(3)"
        f") ENGINE = {'Replicated' if storage.ctx.cluster else ''}ReplacingMergeTree"
        f"{_repl_args(storage)} ORDER BY (Component, Version)"
    )
    done = {
        int(r[0])
        for r in storage.query(
            f"SELECT Version FROM {db}.`{MIGRATIONS_TABLE}` FINAL WHERE Component = {{c:String}}",
            {"c": component},
        )
    }
    applied: list[int] = []
    for mig in sorted(migrations, key=lambda m: m.version):
        if mig.version in done:
            continue
        for stmt in mig.statements(storage.ctx):
            storage.command(stmt)
        if mig.run is not None:
            mig.run(storage)
        storage.insert(
            MIGRATIONS_TABLE, [[component, mig.version, mig.name]], ["Component", "Version", "Name"]
        )
        log.info("applied migration %s/%d: %s", component, mig.version, mig.name)
        applied.append(mig.version)
    sync_merge_settings(storage)
    return applied


def sync_merge_settings(storage: Storage) -> None:
    """Apply ``merge_tree_settings`` to every MergeTree table of the database (idempotent).

    The defaults (``storage.merge_tree_settings``) trade a few more active parts for less
    background merging (``merge_selector_base``: each row is re-read and re-compressed fewer
    times; the embedded engine spent as much CPU merging as inserting) and cap the memory an
    insert or a merge holds (compact parts up to 64 MiB keep one write buffer instead of one
    per column stream; smaller compression blocks). A server that does not know a setting
    gets a warning, not a failed start. Names and values are validated by the config.
    """
    if not storage.merge_tree_settings:
        return
    want = {k: setting_literal(v) for k, v in storage.merge_tree_settings.items()}
    rows = storage.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
        {"db": storage.database},
    )
    for name, engine in rows:
        have = engine_settings(str(engine))
        missing = [f"{k} = {v}" for k, v in want.items() if have.get(k) != v]
        if not missing:
            continue
        try:
            storage.command(
                f"ALTER TABLE `{storage.database}`.`{name}`{storage.ctx.on_cluster} MODIFY SETTING {', '.join(missing)}"
            )
        except StorageError as exc:
            log.warning("cannot apply storage.merge_tree_settings to %s: %s", name, exc.message)
            return


def _repl_args(storage: Storage) -> str:
    if not storage.ctx.cluster:
        return "()"
    return f"('{storage.ctx.replication_path}', '{{replica}}')"


def sync_ttl(storage: Storage) -> None:
    """Bring each telemetry table's TTL in line with ``ttl_days`` (retention is configurable)."""
    rows = storage.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}", {"db": storage.database}
    )
    engines = {str(name): str(engine) for name, engine in rows}
    for spec in TTL_TABLES:
        name = f"{spec.name}_local" if storage.ctx.cluster else spec.name
        engine = engines.get(name)
        if engine is None or spec.ttl is None:
            continue
        want = f"toIntervalDay({storage.ctx.ttl_days})" if storage.ctx.ttl_days > 0 else None
        has_ttl = " TTL " in engine
        if want and want not in engine.replace(" ", "").replace("toIntervalDay(", "toIntervalDay("):
            storage.command(
                f"ALTER TABLE `{storage.database}`.`{name}`{storage.ctx.on_cluster} "
                f"MODIFY TTL {spec.ttl} + toIntervalDay({int(storage.ctx.ttl_days)})"
            )
        elif want is None and has_ttl:
            storage.command(f"ALTER TABLE `{storage.database}`.`{name}`{storage.ctx.on_cluster} REMOVE TTL")


def telemetry_insert_settings(storage: Storage) -> dict[str, str]:
    """``defer_attribute_indexes``: the attribute bloom filters are built by merges, not INSERTs.

    The contrib schema's bloom-filter indexes over attribute keys and values (and the logs'
    body token index) cost the embedded engine ~2.5 µs of CPU per span at insert, and every
    background merge rebuilds them from the merged rows anyway. Left out of the INSERT they
    exist once a part has been merged (seconds to minutes under load); a query over parts not
    merged yet reads them whole — the index only ever skips granules, results are the same.
    The trace-id and duration indexes are still built at insert (a just-exported trace is
    looked up at once). A server without the setting (ClickHouse < 25.x) keeps building them.
    """
    if not storage.defer_attribute_indexes:
        return {}
    rows = storage.query("SELECT count() FROM system.settings WHERE name = {n:String}", {"n": _DEFER_SETTING})
    if not rows or not rows[0][0]:
        log.info("storage.defer_attribute_indexes: the server does not know %s; ignored", _DEFER_SETTING)
        return {}
    return {_DEFER_SETTING: ", ".join(DEFERRED_INDEXES)}


_DEFER_SETTING = "exclude_materialize_skip_indexes_on_insert"
# The attribute indexes of the contrib schema (traces, logs, the five metrics tables); a name a
# table does not have is ignored by ClickHouse.
DEFERRED_INDEXES = (
    "idx_res_attr_key",
    "idx_res_attr_value",
    "idx_scope_attr_key",
    "idx_scope_attr_value",
    "idx_span_attr_key",
    "idx_span_attr_value",
    "idx_log_attr_key",
    "idx_log_attr_value",
    "idx_attr_key",
    "idx_attr_value",
    "idx_lower_body",
)


def engine_settings(engine_full: str) -> dict[str, str]:
    """The ``SETTINGS a = 1, b = 'x'`` of a table's ``engine_full``, as name → literal."""
    _, found, tail = engine_full.partition(" SETTINGS ")
    pairs = (item.partition(" = ") for item in tail.split(", ")) if found else ()
    return {k.strip(): v.strip() for k, sep, v in pairs if sep}


def setting_literal(value: int | float | str) -> str:
    """How ClickHouse shows a setting's value in ``engine_full`` (so a re-run finds it applied)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    return f"'{value}'"
