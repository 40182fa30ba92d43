"""Anomaly service — PLACEHOLDER until issue 6 lands."""

from __future__ import annotations

from typing import Any


def build_anomaly_service(storage: Any, config: Any, registry: Any, *, topology: Any = None) -> Any:
    return None
