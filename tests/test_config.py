from __future__ import annotations

from pathlib import Path

import pytest

from otel_ai.config import load_config
from otel_ai.errors import ConfigError
from otel_ai.sections import split_host_port


def test_defaults_bind_loopback() -> None:
    cfg = load_config(None, environ={})
    assert cfg.server.otlp_grpc == "127.0.0.1:4317"
    assert cfg.server.otlp_http == "127.0.0.1:4318"
    assert cfg.server.api == "127.0.0.1:8700"
    assert cfg.storage.dsn == "chdb://./data/clickhouse"
    assert cfg.storage.ttl_days == 14


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("storage:\n  dsn: chdb:///from/file\npipeline:\n  queue_items: 10\n")
    cfg = load_config(
        f, environ={"OTEL_AI_STORAGE": "chdb:///from/env", "OTEL_AI_PIPELINE__QUEUE_ITEMS": "20"}
    )
    assert cfg.storage.dsn == "chdb:///from/env"
    assert cfg.pipeline.queue_items == 20
    cfg = load_config(
        f, environ={"OTEL_AI_STORAGE": "chdb:///from/env"}, overrides={"storage.dsn": "chdb:///flag"}
    )
    assert cfg.storage.dsn == "chdb:///flag"


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("pipeline:\n  queue_items: -1\n", "pipeline.queue_items"),
        ("server:\n  api: nope\n", "server.api"),
        ("storage:\n  bogus: 1\n", "storage.bogus"),
        ("storage:\n  database: 'a-b; DROP'\n", "storage.database"),
        ("- just\n- a list\n", "<root>"),
        ("server: [unclosed\n", "--config"),
    ],
    ids=["negative", "bad-hostport", "unknown-key", "bad-identifier", "not-a-mapping", "bad-yaml"],
)
def test_errors_name_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(f, environ={})
    assert info.value.key == key
    assert str(info.value).startswith(key)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", environ={})


def _leaves(tree: object, prefix: str = "") -> set[str]:
    if isinstance(tree, dict):
        out: set[str] = set()
        for k, v in tree.items():
            out |= _leaves(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip(".")}


def test_shipped_config_documents_every_setting_with_its_default() -> None:
    """config/otel-ai.yaml lists every setting, and its values are the defaults in code."""
    import yaml

    from otel_ai.config import Config

    path = Path(__file__).resolve().parents[1] / "config" / "otel-ai.yaml"
    shipped = yaml.safe_load(path.read_text())
    defaults = Config().model_dump(mode="json")
    assert _leaves(shipped) == _leaves(defaults)
    assert load_config(path, environ={}).model_dump(mode="json") == defaults


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:4317", ("127.0.0.1", 4317)), ("[::1]:8700", ("::1", 8700)), ("0.0.0.0:0", ("0.0.0.0", 0))],
    ids=["ipv4", "ipv6-bracketed", "port-0"],
)
def test_split_host_port(value: str, expected: tuple[str, int]) -> None:
    assert split_host_port(value) == expected


@pytest.mark.parametrize("bad", ["4317", "localhost:", ":4317", "h:99999", "h:x1"], ids=str)
def test_a_listen_address_that_is_not_host_port_names_its_key(bad: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_host_port(bad)
    with pytest.raises(ConfigError, match=r"^server\.otlp_grpc: .*HOST:PORT"):
        load_config(None, environ={}, overrides={"server.otlp_grpc": bad})
