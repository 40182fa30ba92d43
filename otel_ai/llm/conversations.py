"""Conversations: the store interface, an in-memory store (library use, tests), and context
trimming that keeps the system prompt and drops the oldest turns first. The ClickHouse store
lives in :mod:`otel_ai.llm.service` (the one module allowed to import storage)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from otel_ai.llm.types import Message, messages_tokens


@dataclass
class Conversation:
    id: str
    created_at: float
    title: str = ""
    system: str = ""
    task: str = "general"
    model: str | None = None
    messages: list[Message] = field(default_factory=list)
    updated_at: float = 0.0
    message_count: int | None = None  # set by list() when messages are not loaded

    def as_dict(self, with_messages: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "system": self.system,
            "task": self.task,
            "model": self.model,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at or self.created_at),
            "message_count": len(self.messages) if self.message_count is None else self.message_count,
        }
        if with_messages:
            out["messages"] = [m.as_dict() for m in self.messages]
        return out


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


class ConversationStore(Protocol):
    """Blocking store; the manager calls it off the event loop."""

    def create(self, conv: Conversation) -> None: ...
    def append(self, conv_id: str, first_seq: int, messages: list[Message]) -> None:
        """Store one turn; ``first_seq`` is a time-ordered id (µs) so concurrent turns never collide."""
        ...

    def get(self, conv_id: str) -> Conversation | None: ...
    def list(self, limit: int) -> list[Conversation]: ...
    def delete(self, conv_id: str) -> bool: ...


class MemoryConversationStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, Conversation] = {}

    def create(self, conv: Conversation) -> None:
        with self._lock:
            self._data[conv.id] = conv

    def append(self, conv_id: str, first_seq: int, messages: list[Message]) -> None:
        with self._lock:
            conv = self._data[conv_id]
            conv.messages.extend(messages)
            conv.updated_at = time.time()

    def get(self, conv_id: str) -> Conversation | None:
        with self._lock:
            conv = self._data.get(conv_id)
            return (
                None if conv is None else Conversation(**{**conv.__dict__, "messages": list(conv.messages)})
            )

    def list(self, limit: int) -> list[Conversation]:
        with self._lock:
            convs = sorted(self._data.values(), key=lambda c: c.updated_at or c.created_at, reverse=True)[
                :limit
            ]
            return [Conversation(**{**c.__dict__, "messages": list(c.messages)}) for c in convs]

    def delete(self, conv_id: str) -> bool:
        with self._lock:
            return self._data.pop(conv_id, None) is not None


def trim_to_window(messages: list[Message], budget_tokens: int) -> list[Message]:
    """Keep every system message and the newest turns that fit ``budget_tokens``.

    The last message (the new user turn) is always kept, even alone over budget (the context
    filter then decides whether any model can take it).
    """
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    if not rest:
        return system
    kept = [rest[-1]]
    used = messages_tokens(system) + messages_tokens(kept)
    for msg in reversed(rest[:-1]):
        cost = messages_tokens([msg])
        if used + cost > budget_tokens:
            break
        kept.insert(0, msg)
        used += cost
    while kept and kept[0].role == "assistant" and len(kept) > 1:  # a window starts on a user turn
        kept.pop(0)
    return system + kept
