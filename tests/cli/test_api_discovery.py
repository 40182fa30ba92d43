"""How the query commands find the daemon, and what they say when they cannot."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from otel_ai.cli.client import DEFAULT_API, resolve_api, resolve_token
from otel_ai.cli.main import main
from otel_ai.testing.daemons import free_port


@pytest.mark.parametrize(
    ("flag", "environ", "config", "expected", "source"),
    [
        (None, {}, None, DEFAULT_API, "the default"),
        ("http://h:1", {"OTEL_AI_API_URL": "http://e:2", "OTEL_AI_API": "127.0.0.1:3"}, None, "http://h:1", "--api-url"),
        (None, {"OTEL_AI_API_URL": "http://e:2", "OTEL_AI_API": "127.0.0.1:3"}, None, "http://e:2", "OTEL_AI_API_URL"),
        (None, {"OTEL_AI_API": "0.0.0.0:8711"}, "server: {api: 127.0.0.1:9}", "http://127.0.0.1:8711", "OTEL_AI_API"),
        (None, {"OTEL_AI_SERVER__API": "10.0.0.5:8712"}, None, "http://10.0.0.5:8712", "OTEL_AI_SERVER__API"),
        (None, {}, "server: {api: '[::]:8713'}", "http://[::1]:8713", "server.api in"),
        (None, {}, "server: {api: 127.0.0.1:8714}", "http://127.0.0.1:8714", "server.api in"),
        (None, {}, "not: [valid", DEFAULT_API, "the default"),
    ],
    ids=["default", "flag-wins", "env-url", "daemon-env-over-config", "daemon-nested-env",
         "config-wildcard-v6", "config", "bad-config-ignored"],
)  # fmt: skip
def test_api_url_resolution_order(
    flag: str | None, environ: dict[str, str], config: str | None, expected: str, source: str, tmp_path: Path
) -> None:
    path = None
    if config is not None:
        path = tmp_path / "otel-ai.yaml"
        path.write_text(config)
    url, said = resolve_api(flag, str(path) if path else None, environ)
    assert url == expected and said.startswith(source)


def test_config_via_env_and_token_from_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  api: 127.0.0.1:8799\napi:\n  token: s3cret\n")
    env = {"OTEL_AI_CONFIG": str(path)}
    assert resolve_api(None, None, env)[0] == "http://127.0.0.1:8799"
    assert resolve_token(None, None, env) == "s3cret"
    assert resolve_token("flag", None, env) == "flag"
    assert resolve_token(None, None, {**env, "OTEL_AI_API_TOKEN": "envtok"}) == "envtok"


@pytest.mark.parametrize("command", [["status"], ["services"], ["topology"], ["anomalies"]], ids=str)
def test_unreachable_daemon_says_how_to_point_elsewhere(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_AI_API_URL", "OTEL_AI_API", "OTEL_AI_CONFIG", "OTEL_AI_SERVER__API"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    monkeypatch.setenv("OTEL_AI_API", f"127.0.0.1:{port}")
    assert main(command) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"http://127.0.0.1:{port} (OTEL_AI_API)" in err
    assert "--api-url" in err and "OTEL_AI_API_URL" in err


def test_resolution_fills_args_once() -> None:
    from otel_ai.cli.client import resolve

    args = argparse.Namespace(api_url=None, config=None, token=None)
    resolve(args)
    first = args.api_url
    args.api_url = "http://changed:1"
    resolve(args)  # already resolved: left alone
    assert first and args.api_url == "http://changed:1"
