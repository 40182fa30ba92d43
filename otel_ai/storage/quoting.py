"""ClickHouse SQL literals for values the code itself produces (paths, settings, structures).

User input never goes through here: queries take it as named parameters (``parameters=``).
"""

from __future__ import annotations

from typing import Any


def quote(text: str) -> str:
    """``text`` as a single-quoted ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(value: Any) -> str:
    """A setting's value as a literal: integers (and booleans) bare, everything else quoted."""
    return str(int(value)) if isinstance(value, bool | int) else quote(str(value))
