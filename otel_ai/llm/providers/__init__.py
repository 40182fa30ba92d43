"""Provider registry: every provider kind, built-in or not, registers the same way."""

from __future__ import annotations

from otel_ai.llm.providers.base import PROVIDERS, Provider, make_provider, register_provider

__all__ = ["PROVIDERS", "Provider", "make_provider", "register_provider"]
