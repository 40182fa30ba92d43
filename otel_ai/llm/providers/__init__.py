"""Provider registry: every provider kind, built-in or not, is found the same way."""

from __future__ import annotations

from otel_ai.llm.providers.base import Provider
from otel_ai.llm.providers.registry import BUILTINS, PROVIDERS, make_provider, register_provider

__all__ = ["BUILTINS", "PROVIDERS", "Provider", "make_provider", "register_provider"]
