"""Mistyped flags and commands: the chosen sub-command's usage plus the nearest name."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_ai.cli.main import main
from otel_ai.config import load_config
from otel_ai.errors import ConfigError


@pytest.mark.parametrize(
    ("argv", "usage", "hint"),
    [
        (["demo", "--durration", "5"], "usage: otel-ai demo", "did you mean --duration?"),
        (["status", "--jsno"], "usage: otel-ai status", "did you mean --json?"),
        (["services", "--operatons"], "usage: otel-ai services", "did you mean --operations?"),
        (["topology", "--sinse", "5m"], "usage: otel-ai topology", "did you mean --since?"),
        (["anomalies", "detect", "--since", "1h", "--until", "now", "--train-sinse", "2h"],
         "usage: otel-ai anomalies detect", "did you mean --train-since?"),
        (["serve", "--otlp-grcp", "127.0.0.1:1"], "usage: otel-ai serve", "did you mean --otlp-grpc?"),
    ],
    ids=["demo", "status", "services", "topology", "nested-detect", "serve"],
)  # fmt: skip
def test_mistyped_flag_prints_the_subcommand_usage_and_the_nearest_flag(
    argv: list[str], usage: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage), err
    assert "unrecognized arguments" in err and hint in err


def test_unknown_positional_names_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["status", "extra"])
    err = capsys.readouterr().err
    assert err.startswith("usage: otel-ai status") and "unrecognized arguments: extra" in err
    assert "did you mean" not in err


def test_mistyped_command_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["stauts"])
    assert "did you mean 'status'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "yaml_text", "message"),
    [
        ({"OTEL_AI_PIPELINE__QUEUE_ITEM": "5"}, None,
         "pipeline.queue_item: unknown setting; did you mean pipeline.queue_items? (set by OTEL_AI_PIPELINE__QUEUE_ITEM)"),
        ({}, "pipline:\n  queue_items: 5\n", "pipline: unknown setting; did you mean pipeline?"),
        ({}, "server:\n  apii: 127.0.0.1:1\n", "server.apii: unknown setting; did you mean server.api?"),
        ({}, "storage:\n  zzz: 1\n", "storage.zzz: unknown setting"),
    ],
    ids=["env-key", "yaml-section", "yaml-key", "no-near-match"],
)  # fmt: skip
def test_unknown_config_key_suggests_the_nearest(
    environ: dict[str, str], yaml_text: str | None, message: str, tmp_path: Path
) -> None:
    path = None
    if yaml_text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ=environ)
    assert str(exc.value) == message
