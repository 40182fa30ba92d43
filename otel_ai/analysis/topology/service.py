"""Topology service — PLACEHOLDER until issue 3 lands."""

from __future__ import annotations

from typing import Any


def build_topology_service(storage: Any, config: Any, registry: Any) -> Any:
    return None
