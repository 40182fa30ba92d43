"""LLM manager factory — PLACEHOLDER until issue 4 lands."""

from __future__ import annotations

from typing import Any


def build_llm_manager(config: Any, storage: Any, registry: Any) -> Any:
    return None
