"""A :class:`Storage` on a DSN in one call, for tests and benchmarks.

``storage_at(dsn, database)`` is the store with nothing tuned (no MergeTree settings, indexes
built at insert) unless a ``storage.*`` setting is passed; the daemon builds its store from the
``storage`` section instead (``Storage(config.storage)``).
"""

from __future__ import annotations

from typing import Any

from otel_ai.storage import Storage
from otel_ai.storage.config import StorageConfig


def storage_config(dsn: str, database: str = "otel", **settings: Any) -> StorageConfig:
    """A ``storage`` section for ``dsn``; unset keys take the untuned values, not the defaults."""
    base: dict[str, Any] = {"merge_tree_settings": {}, "defer_attribute_indexes": False}
    base.update(settings)
    return StorageConfig(dsn=dsn, database=database, **base)


def storage_at(dsn: str, database: str = "otel", *, pool_size: int = 6, **settings: Any) -> Storage:
    """A (not yet started) :class:`Storage` on ``dsn``/``database``; ``settings`` are ``storage.*`` keys."""
    return Storage(storage_config(dsn, database, **settings), pool_size=pool_size)
