"""Which class serves a deployment's ``provider`` kind.

Built-in kinds are named by module path and imported on first use (the way simonw/llm loads its
default plugins), so nothing here imports a provider module and ``import otel_ai.llm`` stays
cheap. Any other kind is added at run time with :func:`register_provider`, which also overrides
a built-in (tests, benchmarks, plugins).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from otel_ai.llm.config import DeploymentConfig, LLMConfig
from otel_ai.llm.providers.base import Provider

ProviderFactory = Callable[[DeploymentConfig, LLMConfig], Provider]

BUILTINS: dict[str, str] = {
    "openai": "otel_ai.llm.providers.openai_compat:OpenAIProvider",
    "local": "otel_ai.llm.providers.openai_compat:LocalProvider",
    "anthropic": "otel_ai.llm.providers.anthropic_provider:AnthropicProvider",
    "embedded": "otel_ai.llm.providers.embedded:EmbeddedProvider",
    "rules": "otel_ai.llm.providers.rules:RulesProvider",
}

PROVIDERS: dict[str, ProviderFactory] = {}


def register_provider(kind: str, factory: ProviderFactory) -> None:
    """Serve deployments of ``provider: kind`` with ``factory(deployment, config)``."""
    PROVIDERS[kind] = factory


def provider_factory(kind: str) -> ProviderFactory | None:
    """The registered factory of ``kind``, else its built-in class (imported now), else None."""
    if kind in PROVIDERS:
        return PROVIDERS[kind]
    path = BUILTINS.get(kind)
    if path is None:
        return None
    module, _, name = path.partition(":")
    factory: ProviderFactory = getattr(importlib.import_module(module), name)
    PROVIDERS[kind] = factory
    return factory


def make_provider(deployment: DeploymentConfig, config: LLMConfig) -> Provider:
    factory = provider_factory(deployment.provider)
    if factory is None:
        raise ValueError(
            f"llm.deployments[{deployment.name}].provider: unknown provider {deployment.provider!r}"
        )
    return factory(deployment, config)
