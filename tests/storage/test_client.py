from __future__ import annotations

from pathlib import Path

import pytest

from otel_ai.errors import StorageError
from otel_ai.storage import Storage
from otel_ai.storage.dsn import normalize_dsn, redact_dsn
from otel_ai.testing.stores import storage_at


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("chdb://./data/clickhouse", "chdb:///base/data/clickhouse"),
        ("chdb://data/x", "chdb:///base/data/x"),
        ("chdb:///abs/path", "chdb:///abs/path"),
        ("http://u:p@h:8123/db", "http://u:p@h:8123/db"),
    ],
    ids=["dot-relative", "relative", "absolute", "http-untouched"],
)
def test_normalize_dsn(dsn: str, expected: str) -> None:
    assert normalize_dsn(dsn, Path("/base")) == expected


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("http://user:s3cret@host:8123/otel", "http://user:***@host:8123/otel"),
        ("https://host:8443", "https://host:8443"),
        ("chdb:///x", "chdb:///x"),
    ],
)
def test_redact_dsn_hides_password(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected
    assert "s3cret" not in redact_dsn(dsn)


def test_http_dsn_path_selects_database() -> None:
    st = storage_at("http://u:p@127.0.0.1:1/analytics", "otel")
    assert st.database == "analytics"
    assert not st.embedded


def test_unreachable_server_is_a_retryable_storage_error() -> None:
    from otel_ai.testing.daemons import free_port

    st = storage_at(f"http://127.0.0.1:{free_port()}/otel", connect_timeout_s=1, query_timeout_s=1)
    with pytest.raises(StorageError) as info:
        st.start()
    assert info.value.retryable
    assert st.ping() is False


def test_bad_sql_is_a_non_retryable_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError) as info:
        storage.query("SELECT no_such_column FROM {db:Identifier}.otel_traces", {"db": storage.database})
    assert not info.value.retryable
    assert "no_such_column" in info.value.message


def test_parameters_are_not_interpolated(storage: Storage) -> None:
    evil = "x'; DROP TABLE otel_traces; --"
    rows = storage.query(
        "SELECT count() FROM {db:Identifier}.otel_traces WHERE ServiceName = {s:String}",
        {"db": storage.database, "s": evil},
    )
    assert rows == [(0,)]
    assert storage.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'otel_traces'",
        {"db": storage.database},
    ) == [(1,)]
