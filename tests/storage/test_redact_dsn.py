"""A DSN's password never reaches a log line or an error: in the userinfo or in the query."""

from __future__ import annotations

import pytest

from otel_ai.errors import StorageError
from otel_ai.storage.dsn import redact_dsn
from otel_ai.testing.stores import storage_at


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        pytest.param("http://u:hunter2@h:8123/db", "http://u:***@h:8123/db", id="userinfo"),
        pytest.param(
            "http://u@h:8123/db?password=hunter2&x=1", "http://u@h:8123/db?password=***&x=1", id="query"
        ),
        pytest.param("https://h/db?x=1&PASSWORD=hunter2", "https://h/db?x=1&PASSWORD=***", id="query-upper"),
        pytest.param("http://h:8123/db?x=1", "http://h:8123/db?x=1", id="none"),
        pytest.param("chdb:///data/clickhouse", "chdb:///data/clickhouse", id="embedded"),
    ],
)
def test_redacted(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_the_startup_error_does_not_print_a_query_password() -> None:
    st = storage_at(
        "http://default@127.0.0.1:1/otel?password=hunter2", connect_timeout_s=0.5, query_timeout_s=0.5
    )
    with pytest.raises(StorageError) as err:
        st.start()
    assert "hunter2" not in err.value.message and "password=***" in err.value.message
