"""The compose path, validated without Docker: every service, port, volume, variable and file it needs.

No Docker engine runs here, so these tests check what ``docker compose config`` and the containers
would trip over: files that do not exist, unpinned images, daemon variables the config loader
rejects, a collector exporter pointed at a host or port nobody serves, a JSON switch that does not
reach the services or the collector.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_ai.config import load_config
from otel_ai.demo import load_timeline

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"
CHECKOUT = DEMO / "opentelemetry-demo"  # the demo's compose project directory
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR:-default}`` with an empty environment (what a fresh checkout gets)."""
    env = env or {}
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def env_map(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(ROOT / "docker-compose.yml")


def test_services_images_are_pinned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"clickhouse", "otel-ai", "demo-generator"} <= set(services)
    for name, svc in services.items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: unpinned image {image}"
    for name in ("otel-ai", "demo-generator"):  # a local tag: built, never pulled
        assert (
            services[name]["pull_policy"] == "build"
            and services[name]["build"]["dockerfile"] == "demo/daemon.Dockerfile"
        )
    dockerfile = (ROOT / compose["services"]["otel-ai"]["build"]["dockerfile"]).read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    for src in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), f"Dockerfile copies missing {part}"
    assert "OTEL_AI_OTLP_GRPC=0.0.0.0:4317" in dockerfile and "OTEL_AI_API=0.0.0.0:8700" in dockerfile


def test_daemon_environment_is_accepted_by_the_config_loader(compose: dict[str, Any]) -> None:
    svc = compose["services"]["otel-ai"]
    env = {k: interpolate(v) for k, v in env_map(svc).items() if interpolate(v)}
    cfg = load_config(None, environ=env)
    assert cfg.storage.dsn == "http://otel:otel@clickhouse:8123/otel"
    assert (cfg.server.otlp_grpc, cfg.server.otlp_http, cfg.server.api) == (
        "0.0.0.0:4317",
        "0.0.0.0:4318",
        "0.0.0.0:8700",
    )
    assert cfg.pipeline.spool_dir == "/data/spool"
    published = {interpolate(p).split(":")[-1] for p in svc["ports"]}
    assert published == {"4317", "4318", "8700"}
    assert svc["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert any(v.startswith("otel-ai-data:/data") for v in svc["volumes"])
    assert "/readyz" in " ".join(svc["healthcheck"]["test"])


def test_clickhouse_service_matches_the_daemon_dsn(compose: dict[str, Any]) -> None:
    ch = compose["services"]["clickhouse"]
    env = {k: interpolate(v) for k, v in env_map(ch).items()}
    assert (env["CLICKHOUSE_USER"], env["CLICKHOUSE_PASSWORD"], env["CLICKHOUSE_DB"]) == (
        "otel",
        "otel",
        "otel",
    )
    mounts = {}
    for vol in ch["volumes"]:
        src, dst = vol.split(":")[:2]
        mounts[dst] = src
        if src.startswith("./"):
            assert (ROOT / src).exists(), f"clickhouse mounts missing {src}"
    assert mounts["/var/lib/clickhouse/format_schemas"] == "./otel_ai/otlp/proto"
    assert (ROOT / "otel_ai/otlp/proto/otlp_clickhouse.proto").is_file()
    for conf in ("config.d/otel-ai.xml", "users.d/otel-ai.xml"):
        ET.parse(ROOT / "config/clickhouse" / conf)  # well-formed XML
    root = ET.parse(ROOT / "config/clickhouse/config.d/otel-ai.xml").getroot()
    assert root.findtext("format_schema_path") == "/var/lib/clickhouse/format_schemas/"
    assert set(compose["volumes"]) >= {"clickhouse-data", "otel-ai-data"}


def test_synthetic_generator_follows_the_encoding_switch(compose: dict[str, Any]) -> None:
    gen = compose["services"]["demo-generator"]
    assert gen["profiles"] == ["synthetic"]
    cmd = gen["command"][0]
    assert "--endpoint http://otel-ai:4318" in cmd
    assert 'if [ "$$OTEL_AI_ENCODING" = json ]; then P=http/json; else P=http/protobuf; fi' in cmd
    assert env_map(gen)["OTEL_AI_ENCODING"] == "${OTEL_AI_ENCODING:-proto}"


def test_official_demo_collector_reaches_the_daemon(compose: dict[str, Any]) -> None:
    override = load(DEMO / "otel-demo.override.yml")
    col = override["services"]["otel-collector"]
    assert env_map(col)["OTEL_AI_ENCODING"] == "${OTEL_AI_ENCODING:-proto}"
    assert "otel-ai" in col["networks"] and "default" in col["networks"]
    net = override["networks"]["otel-ai"]
    assert net["external"] is True and net["name"] == compose["networks"]["default"]["name"]
    extras = load(DEMO / "otel-collector/otelcol-config-extras.yml")
    exp = extras["exporters"]["otlphttp/otel-ai"]
    host_port = exp["endpoint"].split("://", 1)[1]
    assert host_port == "otel-ai:4318"  # the daemon's service name and its OTLP/HTTP port
    assert exp["encoding"] == "${env:OTEL_AI_ENCODING}"
    for name, pipe in extras["service"]["pipelines"].items():
        assert name.split("/")[0] in {"traces", "metrics", "logs"}
        assert pipe["receivers"] == ["otlp"]
        assert set(pipe["processors"]) <= set(extras["processors"])
        assert set(pipe["exporters"]) <= set(extras["exporters"])
    assert {n.split("/")[0] for n in extras["service"]["pipelines"]} == {"traces", "metrics", "logs"}


def test_demo_env_points_at_our_files_and_pins_the_release() -> None:
    env = dict(
        line.split("=", 1) for line in (DEMO / "otel-demo.env").read_text().splitlines() if "=" in line and not line.startswith("#")
    )  # fmt: skip
    assert (CHECKOUT / env["OTEL_COLLECTOR_CONFIG_EXTRAS"]).resolve() == (
        DEMO / "otel-collector/otelcol-config-extras.yml"
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["DEMO_VERSION"]) and env["IMAGE_VERSION"] == env["DEMO_VERSION"]
    script = (DEMO / "otel-demo.sh").read_text()
    assert f"OTEL_DEMO_VERSION:-{env['DEMO_VERSION']}" in script
    for f in ("otel-demo.env", "otel-demo.override.yml", "otel-demo.json.yml"):
        assert f"$HERE/{f}" in script
    subprocess.run(["sh", "-n", str(DEMO / "otel-demo.sh")], check=True)


def test_json_profile_switches_services_and_collector() -> None:
    profile = load(DEMO / "otel-demo.json.yml")["services"]
    assert env_map(profile["otel-collector"])["OTEL_AI_ENCODING"] == "json"
    for svc in ("frontend", "payment"):
        env = env_map(profile[svc])
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
        # JSON is OTLP/HTTP only: the endpoint must be the collector's HTTP port, not gRPC.
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":${OTEL_COLLECTOR_PORT_HTTP}")


@pytest.mark.parametrize("path", sorted((DEMO / "timelines").glob("*.yaml")), ids=lambda p: p.name)
def test_example_timelines_parse(path: Path) -> None:
    assert load_timeline(path)
