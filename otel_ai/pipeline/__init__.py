"""Bounded queue → batches → storage, with a durable spool — PLACEHOLDER until issue 2 lands."""

from __future__ import annotations

from typing import Any


class Pipeline:
    def __init__(self, config: Any, writer: Any, *, registry: Any) -> None:
        self.writer = writer

    async def start(self) -> None:
        return None

    async def shutdown(self, timeout_s: float = 15.0) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {}
