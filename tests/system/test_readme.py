"""The README works as written: every ``otel-ai`` command parses; the Quick start runs on a fresh store.

The README is read at test time, so lines other rooms add to it are checked too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_ai.cli.main import build_parser
from otel_ai.demo import parse_duration
from otel_ai.testing.daemons import ROOT, SubprocessDaemon
from tests.system.readme import Command, commands

QUICK_START = "Quick start"
ALL = commands()


def test_the_readme_has_commands_and_a_quick_start() -> None:
    assert len(ALL) >= 10
    quick = commands(section=QUICK_START)
    assert {c.argv[0] for c in quick} >= {"demo", "services", "topology", "status"}


@pytest.mark.parametrize("cmd", ALL, ids=[" ".join(c.argv)[:60] for c in ALL])
def test_every_readme_command_parses(cmd: Command) -> None:
    try:
        args = build_parser().parse_args(list(cmd.argv))
    except SystemExit as exc:
        pytest.fail(
            f"README ({cmd.section}): `otel-ai {' '.join(cmd.argv)}` does not parse (exit {exc.code})"
        )
    if args.command == "demo":  # values argparse leaves as strings
        for flag in ("duration", "backfill"):
            if getattr(args, flag, None):
                parse_duration(getattr(args, flag), f"--{flag}")


def test_readme_parser_reads_shell_blocks() -> None:
    """The extractor itself: prompts, continuations, env prefixes, chains, comments, other languages."""
    text = """
## A
```sh
OTEL_AI_X=1 .venv/bin/otel-ai status   # comment
otel-ai llm health; otel-ai llm usage
otel-ai demo --backfill 2d \\
    --rate 2
curl -s localhost:8700/healthz && otel-ai topology --since 5m
```
```console
$ otel-ai services --json
service  spans
```
```yaml
otel-ai: not a command
```
## B
```
$ otel-ai anomalies --status open
otel-ai serve [--config FILE]
```
"""
    got = [c.argv for c in commands(text)]
    assert got == [
        ("status",), ("llm", "health"), ("llm", "usage"), ("demo", "--backfill", "2d", "--rate", "2"),
        ("topology", "--since", "5m"), ("services", "--json"), ("anomalies", "--status", "open"),
    ]  # fmt: skip
    assert [c.section for c in commands(text, section="B")] == ["B"]


# -- the Quick start, end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubprocessDaemon]:
    d = SubprocessDaemon(tmp_path_factory.mktemp("readme") / "data").start(timeout=120)
    yield d
    d.terminate()


def _run(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_ai", *argv], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)  # fmt: skip


def _demo_argv(cmd: Command, daemon: SubprocessDaemon) -> list[str]:
    """The README's demo line aimed at this daemon, and short: a live run for 5 s, a backfill of 2 min."""
    argv, skip = [], False
    for a in cmd.argv[1:]:
        if skip:
            skip = False
            continue
        if a in ("--endpoint", "--duration", "--backfill", "--ground-truth"):
            skip = True
            continue
        if a.split("=", 1)[0] in ("--endpoint", "--duration", "--backfill", "--ground-truth"):
            continue
        argv.append(a)
    proto = "grpc"
    if "--protocol" in argv:
        proto = argv[argv.index("--protocol") + 1]
    endpoint = f"http://{daemon.ep.grpc}" if proto == "grpc" else daemon.ep.http_url
    length = ["--backfill", "2m"] if "--backfill" in cmd.argv else ["--duration", "5"]
    return ["demo", *argv, *length, "--endpoint", endpoint]


def _known_trace(daemon: SubprocessDaemon) -> str:
    """One trace with known ids over OTLP/JSON, for ``otel-ai trace ID``."""
    tid, now = "5b8efff798038103d269b633813fc60c", time.time_ns()
    spans = [
        {"traceId": tid, "spanId": "eee19b7ec3c1b174", "name": "GET /", "kind": 2,
         "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 40_000_000)},
        {"traceId": tid, "spanId": "eee19b7ec3c1b175", "parentSpanId": "eee19b7ec3c1b174", "name": "SELECT",
         "kind": 3, "startTimeUnixNano": str(now + 5_000_000), "endTimeUnixNano": str(now + 25_000_000)},
    ]  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
                               "scopeSpans": [{"spans": spans}]}]}  # fmt: skip
    req = urllib.request.Request(f"{daemon.ep.http_url}/v1/traces", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})  # fmt: skip
    assert urllib.request.urlopen(req, timeout=30).status == 200
    return tid


def test_quick_start_end_to_end(daemon: SubprocessDaemon, tmp_path: Path) -> None:
    """Every command of the Quick start, in order, against a fresh store on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_AI_", "OTEL_EXPORTER_"))}
    env.update(PYTHONPATH=str(ROOT), OTEL_AI_API_URL=daemon.api_url, COLUMNS="200")
    outputs: dict[str, str] = {}
    ran = []
    for cmd in commands(section=QUICK_START):
        if cmd.argv[0] == "serve" or cmd.has_placeholder or cmd.lang == "console":
            continue  # the daemon runs already; placeholders are for a reader; console blocks show output
        argv = _demo_argv(cmd, daemon) if cmd.argv[0] == "demo" else list(cmd.argv)
        proc = _run(argv, env, tmp_path)
        assert proc.returncode == 0, (
            f"`otel-ai {' '.join(argv)}` exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
        outputs.setdefault(cmd.argv[0], proc.stdout)
        ran.append(cmd.argv[0])
    assert {"demo", "services", "topology", "status", "traces", "anomalies", "insights", "report"} <= set(ran)
    assert "model" in outputs["anomalies"].lower()  # says what the detector is doing, even with no history
    assert "# otel-ai report" in outputs["report"] and "Service health" in outputs["report"]
    # What the README promises each step shows.
    assert "spans generated =" in outputs["demo"] and " exported + 0 dropped" in outputs["demo"]
    services = outputs["services"].splitlines()
    assert services[0].split()[:3] == ["service", "spans", "req/s"]
    assert any(line.startswith("frontend ") for line in services)
    assert "rates over the" in services[-1] and "s with data" in services[-1]  # not ÷ the whole hour
    assert any(enc in outputs["services"] for enc in ("json=", "protobuf="))
    assert "NODES" in outputs["topology"] and "EDGES" in outputs["topology"]
    assert "frontend" in outputs["topology"] and "->" in outputs["topology"]
    assert "receivers ready" in outputs["status"] and "traces" in outputs["status"]
    assert "scheduled jobs" in outputs["status"]
    # The waterfall of one trace, and the raw JSON still there for scripts.
    tid = _known_trace(daemon)
    found = _run(["traces", "--service", "web"], env, tmp_path)
    assert found.returncode == 0 and tid in found.stdout and "web: GET /" in found.stdout, found.stdout
    proc = _run(["trace", tid], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 spans, 1 services" in proc.stdout and "  SELECT" in proc.stdout
    status = json.loads(_run(["status", "--json"], env, tmp_path).stdout)
    assert status["receivers"]["counters"]["traces"]
    # On the daemon's host the CLI also finds it through the daemon's own config file.
    cfg = tmp_path / "otel-ai.yaml"
    cfg.write_text(f"server:\n  api: {daemon.ep.api}\n")
    no_url = {k: v for k, v in env.items() if k != "OTEL_AI_API_URL"}
    assert json.loads(_run(["status", "--json", "--config", str(cfg)], no_url, tmp_path).stdout)["version"]
    # The daemon's log holds our own lines, not the scheduler's narration.
    log = daemon.log()
    assert "otel-ai ready: api http://" in log
    assert "Adding job tentatively" not in log and "apscheduler" not in log, log
