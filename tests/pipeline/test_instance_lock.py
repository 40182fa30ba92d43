"""One daemon per store and per spool: the spool's default place, and a second daemon refused.

The refusal is tested with real processes: one holding a store and a spool, and ``otel-ai serve``
on the same embedded store, or on another store but the same spool, which must exit at once with
one line naming the directory and the holder's pid; and a running daemon whose locks another
process cannot take until it stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_ai.errors import InstanceLocked
from otel_ai.instance import claim_spool, claim_store, default_spool_dir
from otel_ai.testing.daemons import ROOT, endpoints


@pytest.mark.parametrize(
    ("dsn", "database", "expected"),
    [
        pytest.param("chdb://./data/clickhouse", "otel", "/w/data/spool", id="relative-chdb"),
        pytest.param("chdb:///srv/otel/store", "otel", "/srv/otel/spool", id="absolute-chdb"),
        pytest.param("http://u:p@ch.example:8123/metrics_db", "otel", "/w/data/spool-ch.example-8123-metrics_db",
                     id="server-with-db"),
        pytest.param("https://ch.example", "tele", "/w/data/spool-ch.example-tele", id="server-default-db"),
    ],
)  # fmt: skip
def test_the_spool_lives_beside_its_store(dsn: str, database: str, expected: str) -> None:
    assert default_spool_dir(dsn, database, cwd=Path("/w")) == Path(expected)


def test_a_spool_is_claimed_once_even_in_one_process(tmp_path: Path) -> None:
    first = claim_spool(tmp_path / "spool")
    with pytest.raises(
        InstanceLocked,
        match=rf"the spool {tmp_path}/spool is in use by another otel-ai \(pid {os.getpid()}\)",
    ):
        claim_spool(tmp_path / "spool")
    first.release()
    claim_spool(tmp_path / "spool").release()  # free again once released


def test_an_embedded_store_is_shared_in_process_and_released_last(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    a, b = claim_store(dsn), claim_store(dsn)
    assert a is not None and b is not None
    a.release()
    # still held for b: another process is refused
    code = "import sys; from otel_ai.instance import claim_store; claim_store(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-c", code, dsn], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0 and "is in use by another otel-ai" in run.stderr
    b.release()
    run = subprocess.run(
        [sys.executable, "-c", code, dsn], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr


def _serve(env_over: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``otel-ai serve`` in a child process (it should refuse to start)."""
    ep = endpoints()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_AI_")}
    env.update(
        {"OTEL_AI_OTLP_GRPC": ep.grpc, "OTEL_AI_OTLP_HTTP": ep.http, "OTEL_AI_API": ep.api, **env_over}
    )
    cmd = [sys.executable, "-m", "otel_ai", "serve"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


_HOLDER = """
import sys, time
from otel_ai.config import load_config
from otel_ai.instance import claim_instance
claim_instance(load_config(None, environ={}, overrides={"storage.dsn": sys.argv[1], "pipeline.spool_dir": sys.argv[2]}))
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_daemon_on_the_same_store_or_spool_exits_with_one_line(tmp_path: Path) -> None:
    store, spool = tmp_path / "a" / "clickhouse", tmp_path / "a" / "spool"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"chdb://{store}", str(spool)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        same_store = _serve(
            {"OTEL_AI_STORAGE": f"chdb://{store}", "OTEL_AI_PIPELINE__SPOOL_DIR": str(tmp_path / "b")}
        )
        assert same_store.returncode == 1
        assert same_store.stderr.strip().splitlines() == [
            f"otel-ai: the store {store} is in use by another otel-ai (pid {holder.pid}); "
            "stop it or pass --storage chdb:///another/path"
        ]
        # another store, the same spool: its acknowledged data must not go to this store
        same_spool = _serve({"OTEL_AI_STORAGE": f"chdb://{tmp_path / 'b' / 'clickhouse'}",
                             "OTEL_AI_PIPELINE__SPOOL_DIR": str(spool)})  # fmt: skip
        assert same_spool.returncode == 1
        assert same_spool.stderr.strip().splitlines() == [
            f"otel-ai: the spool {spool} is in use by another otel-ai (pid {holder.pid}); "
            "stop it or set pipeline.spool_dir (OTEL_AI_PIPELINE__SPOOL_DIR) to another directory"
        ]
    finally:
        holder.kill()
        holder.wait()


def test_a_running_daemon_holds_its_store_and_spool(make_daemon: Any, chdb_path: Path) -> None:
    d = make_daemon()
    spool = d.config.pipeline.spool_dir
    code = "import sys; from otel_ai.instance import claim_spool; claim_spool(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-c", code, spool], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0 and f"is in use by another otel-ai (pid {os.getpid()})" in run.stderr
    code = "import sys; from otel_ai.instance import claim_store; claim_store(sys.argv[1])"
    dsn = f"chdb://{chdb_path}"
    run = subprocess.run(
        [sys.executable, "-c", code, dsn], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0 and f"the store {chdb_path} is in use" in run.stderr
    d.stop()
    code = "import sys; from otel_ai.instance import claim_spool; claim_spool(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-c", code, spool], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr  # released at shutdown
