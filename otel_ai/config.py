"""Typed configuration: defaults in code, then the YAML file, then ``OTEL_AI_*`` variables, then flags.

Each room of the package owns the model of its own section (``otel_ai.llm.config`` and so on);
this module only composes them, loads the sources in order and turns validation failures into
:class:`~otel_ai.errors.ConfigError` messages that name the YAML key.

Environment variables: the CLI flags have short names (``OTEL_AI_STORAGE``, ``OTEL_AI_OTLP_GRPC``,
``OTEL_AI_OTLP_HTTP``, ``OTEL_AI_API``, ``OTEL_AI_CONFIG``); any other key is reachable with a
double underscore per level, e.g. ``OTEL_AI_PIPELINE__QUEUE_SIZE=20000``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError

from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.insights.config import InsightsConfig
from otel_ai.analysis.topology.config import TopologyConfig
from otel_ai.api.config import ApiConfig
from otel_ai.daemon_config import LoggingConfig, SchedulerConfig, ServerConfig
from otel_ai.errors import ConfigError
from otel_ai.ingest.config import IngestConfig
from otel_ai.llm.config import LLMConfig
from otel_ai.pipeline.config import MemoryConfig, PipelineConfig
from otel_ai.reports.config import ReportsConfig
from otel_ai.sections import Section
from otel_ai.storage.config import StorageConfig


class Config(Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    topology: TopologyConfig = Field(default_factory=TopologyConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


# Short environment names for the CLI flags → dotted YAML key.
FLAG_ENV = {
    "OTEL_AI_STORAGE": "storage.dsn",
    "OTEL_AI_OTLP_GRPC": "server.otlp_grpc",
    "OTEL_AI_OTLP_HTTP": "server.otlp_http",
    "OTEL_AI_API": "server.api",
    "OTEL_AI_API_TOKEN": "api.token",
}


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if name in FLAG_ENV:
            _set_dotted(tree, FLAG_ENV[name], value)
        elif name.startswith("OTEL_AI_") and "__" in name:
            dotted = name[len("OTEL_AI_") :].lower().replace("__", ".")
            # Values are parsed as YAML scalars so numbers, booleans and lists work.
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
            _set_dotted(tree, dotted, parsed)
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The setting names of the section that ``loc`` (a validation error's path) points into."""
    model: type[BaseModel] | None = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return []
        kinds = [field.annotation, *get_args(field.annotation)]
        model = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
    return list(model.model_fields) if model is not None else []


def _raise_named(exc: ValidationError, environ: Mapping[str, str] | None = None) -> None:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
        loc = tuple(err["loc"])
        near = difflib.get_close_matches(str(loc[-1]), _fields_at(loc[:-1]), n=1, cutoff=0.6)
        if near:
            msg += f"; did you mean {'.'.join([*map(str, loc[:-1]), near[0]])}?"
        env_name = "OTEL_AI_" + "__".join(str(p) for p in loc).upper()
        if environ is not None and env_name in environ:
            msg += f" (set by {env_name})"
    raise ConfigError(key, msg) from exc


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the configuration: defaults ← YAML file ← environment ← ``overrides`` (dotted keys)."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("OTEL_AI_CONFIG")
    tree: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("--config", f"cannot read {p}: {exc.strerror or exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError("--config", f"{p} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("<root>", f"{p} must hold a mapping of sections, not {type(loaded).__name__}")
        tree = loaded
    tree = _merge(tree, _env_overrides(environ))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, dotted, value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        _raise_named(exc, environ)
        raise  # unreachable; keeps type checkers content
