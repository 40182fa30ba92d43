"""Response cache: bounded by entries and entry size, entries expire after a TTL.

Key = SHA-256 of (model group, canonical messages, parameters, schema, prompt version). Only
complete, successful replies are stored (never errors, never a stream that did not finish).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from otel_ai.llm.config import CacheConfig


def cache_key(
    group: str, messages: list[dict[str, str]], params: dict[str, Any], schema: Any, prompt_version: str
) -> str:
    canon = json.dumps(
        {"g": group, "m": messages, "p": params, "s": schema, "v": prompt_version},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canon.encode()).hexdigest()


class ResponseCache:
    """LRU + TTL; ``stats`` counts hits, misses, stores and skips (oversize / disabled)."""

    def __init__(self, config: CacheConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[float, int, Any]] = OrderedDict()  # key → (stored_at, size, value)
        self.stats = {
            "hits": 0,
            "misses": 0,
            "stores": 0,
            "skipped_oversize": 0,
            "evictions": 0,
            "expired": 0,
        }

    @property
    def enabled(self) -> bool:
        return self.config.enabled and self.config.max_entries > 0

    def get(self, key: str) -> tuple[Any, float] | None:
        """``(value, age_s)`` or ``None``."""
        if not self.enabled:
            return None
        with self._lock:
            entry = self._data.get(key)
            now = self._clock()
            if entry is None:
                self.stats["misses"] += 1
                return None
            stored_at, _, value = entry
            if now - stored_at > self.config.ttl_s:
                del self._data[key]
                self.stats["expired"] += 1
                self.stats["misses"] += 1
                return None
            self._data.move_to_end(key)
            self.stats["hits"] += 1
            return value, now - stored_at

    def put(self, key: str, value: Any, size: int) -> bool:
        if not self.enabled:
            return False
        if size > self.config.max_entry_bytes:
            with self._lock:
                self.stats["skipped_oversize"] += 1
            return False
        with self._lock:
            self._data[key] = (self._clock(), size, value)
            self._data.move_to_end(key)
            self.stats["stores"] += 1
            while len(self._data) > self.config.max_entries:
                self._data.popitem(last=False)
                self.stats["evictions"] += 1
        return True

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
