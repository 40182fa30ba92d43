from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_ai.storage import Storage
from otel_ai.testing.daemons import InProcessDaemon, daemon_config, unique_db
from otel_ai.testing.llm_server import FakeLLMServer
from otel_ai.testing.stores import storage_at


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB path this test process may open (one path per process)."""
    return tmp_path_factory.mktemp("chdb") / "clickhouse"


@pytest.fixture
def storage(chdb_path: Path) -> Iterator[Storage]:
    """A started :class:`Storage` on a fresh database of the session's chDB path."""
    st = storage_at(f"chdb://{chdb_path}", unique_db())
    st.start()
    yield st
    st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


@pytest.fixture
def make_daemon(chdb_path: Path, tmp_path: Path) -> Iterator[object]:
    """Factory: ``make_daemon(extra={...})`` → a started :class:`InProcessDaemon`."""
    started: list[InProcessDaemon] = []

    def factory(extra: dict[str, object] | None = None, database: str | None = None) -> InProcessDaemon:
        cfg, ep = daemon_config(chdb_path, database=database, extra=extra, tmp=tmp_path)
        d = InProcessDaemon(cfg, ep).start()
        started.append(d)
        return d

    yield factory
    for d in started:
        d.stop()


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    """A started loopback server speaking the OpenAI and Anthropic wire formats."""
    server = FakeLLMServer().start()
    yield server
    server.stop()
