"""Schema rendering (single server and cluster), migrations and retention."""

from __future__ import annotations

import re

import pytest

from otel_ai.config import Config, load_config
from otel_ai.errors import ConfigError
from otel_ai.storage import Storage
from otel_ai.storage.migrations import engine_settings
from otel_ai.storage.schema import (
    CORE_MIGRATIONS,
    MIGRATIONS_TABLE,
    TRACES,
    Migration,
    SchemaContext,
    TableSpec,
)
from otel_ai.testing.stores import storage_at

CONTRIB_TRACE_COLUMNS = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": "Map(LowCardinality(String), String)",
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))",
    "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": "Array(Map(LowCardinality(String), String))",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(LowCardinality(String), String))",
}


def _columns(storage: Storage, table: str) -> dict[str, str]:
    rows = storage.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        {"db": storage.database, "t": table},
    )
    return {str(n): str(t) for n, t in rows}


def test_traces_table_matches_contrib_exporter(storage: Storage) -> None:
    cols = _columns(storage, "otel_traces")
    for name, typ in CONTRIB_TRACE_COLUMNS.items():
        assert cols.get(name) == typ, name
    assert cols["IngestEncoding"] == "LowCardinality(String)"
    assert cols["IngestTransport"] == "LowCardinality(String)"


@pytest.mark.parametrize(
    "table",
    [
        "otel_traces",
        "otel_traces_trace_id_ts",
        "otel_traces_trace_id_ts_mv",
        "otel_logs",
        "otel_metrics_gauge",
        "otel_metrics_sum",
        "otel_metrics_histogram",
        "otel_metrics_exponential_histogram",
        "otel_metrics_summary",
    ],
)
def test_every_contrib_table_exists(storage: Storage, table: str) -> None:
    rows = storage.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": storage.database, "t": table},
    )
    assert rows[0][0] == 1


def test_migrations_are_recorded_and_idempotent(storage: Storage) -> None:
    assert storage.apply_migrations("core", CORE_MIGRATIONS) == []
    rows = storage.query(
        f"SELECT Component, Version FROM `{storage.database}`.`{MIGRATIONS_TABLE}` FINAL ORDER BY Version"
    )
    assert rows == [("core", m.version) for m in CORE_MIGRATIONS]


def test_component_migrations_apply_in_order_once(storage: Storage) -> None:
    t = TableSpec(name="otel_ai_probe", columns="A UInt8", order_by="A")
    add = "ALTER TABLE {db}.otel_ai_probe{on_cluster} ADD COLUMN IF NOT EXISTS B String"
    migs = (Migration(2, "add B", (add,)), Migration(1, "create", (t,)))
    assert storage.apply_migrations("probe", migs) == [1, 2]
    assert storage.apply_migrations("probe", migs) == []
    assert set(_columns(storage, "otel_ai_probe")) == {"A", "B"}


def test_ttl_follows_config_on_restart(storage: Storage) -> None:
    def engine() -> str:
        return str(
            storage.query(
                "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'otel_traces'",
                {"db": storage.database},
            )[0][0]
        )

    assert "toIntervalDay(14)" in engine()
    again = storage_at(storage.dsn, storage.database, ttl_days=3)
    again.start()
    assert "toIntervalDay(3)" in engine()
    off = storage_at(storage.dsn, storage.database, ttl_days=0)
    off.start()
    assert " TTL " not in engine()


def test_merge_tree_settings_are_applied_to_every_mergetree_table(storage: Storage) -> None:
    def engines() -> dict[str, str]:
        rows = storage.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
            {"db": storage.database},
        )
        return {str(n): str(e) for n, e in rows}

    assert not any("merge_selector_base" in e for e in engines().values())  # the fixture's default: {}
    defaults = Config().storage.merge_tree_settings
    tuned = storage_at(storage.dsn, storage.database, merge_tree_settings=defaults)
    tuned.start()
    tables = engines()
    assert {"otel_traces", "otel_logs", "otel_metrics_sum", "otel_traces_trace_id_ts"} <= set(tables)
    for key, value in defaults.items():
        assert all(f"{key} = {value}" in e for e in tables.values()), (key, tables)
    storage_at(storage.dsn, storage.database, merge_tree_settings=defaults).start()  # idempotent
    storage_at(storage.dsn, storage.database, merge_tree_settings={"merge_selector_base": 35.5}).start()
    assert all("merge_selector_base = 35.5" in e for e in engines().values())  # follows the config
    # a value that is a prefix of the current one is still applied (35 is not "35.5")
    storage_at(storage.dsn, storage.database, merge_tree_settings={"merge_selector_base": 35}).start()
    assert {engine_settings(e)["merge_selector_base"] for e in engines().values()} == {"35"}


@pytest.mark.parametrize("bad", [{"x; DROP TABLE t": 1}, {"merge_selector_base": "1; DROP"}])
def test_merge_tree_settings_reject_anything_but_names_and_plain_values(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="merge_tree_settings"):
        load_config(overrides={"storage.merge_tree_settings": bad}, environ={})


def test_cluster_mode_emits_replicated_local_and_distributed() -> None:
    ctx = SchemaContext(database="otel", cluster="prod", ttl_days=14)
    stmts = [s for m in CORE_MIGRATIONS for s in m.statements(ctx)]
    creates = [s for s in stmts if s.startswith("CREATE TABLE")]
    assert creates, stmts
    assert all(" ON CLUSTER `prod`" in s for s in stmts)
    local = next(s for s in creates if "`otel_traces_local`" in s.split("(")[0])
    assert re.search(
        r"ENGINE = ReplicatedMergeTree\('/clickhouse/tables/\{shard\}/\{database\}/\{table\}', '\{replica\}'\)",
        local,
    )
    dist = next(s for s in creates if s.startswith("CREATE TABLE IF NOT EXISTS `otel`.`otel_traces` "))
    assert "ENGINE = Distributed(`prod`, `otel`, `otel_traces_local`, cityHash64(TraceId))" in dist
    mv = next(s for s in stmts if "MATERIALIZED VIEW" in s)
    assert "TO `otel`.`otel_traces_trace_id_ts_local`" in mv and "FROM `otel`.`otel_traces_local`" in mv


def test_cluster_mode_keeps_engine_arguments() -> None:
    spec = TableSpec(
        name="otel_ai_x", columns="A UInt8, V UInt64", order_by="A", engine="ReplacingMergeTree(V)"
    )
    local = spec.render(SchemaContext(database="d", cluster="c"))[0]
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', V)"
        in local
    )


def test_single_mode_has_no_cluster_clauses() -> None:
    stmts = TRACES.render(SchemaContext(database="otel"))
    assert len(stmts) == 1
    assert "ON CLUSTER" not in stmts[0] and "Replicated" not in stmts[0] and "Distributed" not in stmts[0]
    assert "TTL toDateTime(Timestamp) + toIntervalDay(14)" in stmts[0]
