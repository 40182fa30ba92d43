"""Scale-out roles (docs/decisions/0010-scale-out-on-clickhouse.md): only one instance runs the scheduled analyzers."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("role", "has_receivers", "has_scheduler"),
    [("all", True, True), ("ingest", True, False), ("analyzer", False, True)],
    ids=["all", "ingest", "analyzer"],
)
def test_role_decides_what_runs(
    make_daemon: Any, role: str, has_receivers: bool, has_scheduler: bool
) -> None:
    d = make_daemon(extra={"server.role": role})
    status = d.get("/api/v1/status").json()
    assert status["role"] == role
    assert ("receivers" in status) is has_receivers
    assert ("scheduler" in status) is has_scheduler
    assert (d.daemon.scheduler is not None) is has_scheduler
    assert d.get("/readyz").status_code == 200


def test_scheduler_can_be_disabled(make_daemon: Any) -> None:
    d = make_daemon(extra={"scheduler.enabled": False})
    assert d.daemon.scheduler is None
