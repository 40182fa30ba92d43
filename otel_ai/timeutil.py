"""Time parsing for API parameters: RFC 3339 instants or relative durations (``15m``, ``1h``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"15m"`` → 15 minutes. Raises ``ValueError`` with a readable message."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h, 7d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def parse_instant(text: str, *, now: datetime | None = None) -> datetime:
    """An RFC 3339 instant, ``now``, or a relative duration meaning "that long before now"."""
    now = now or datetime.now(UTC)
    t = text.strip()
    if t == "now":
        return now
    if _DURATION.match(t):
        return now - parse_duration(t)
    iso = t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither RFC 3339 (2026-01-02T03:04:05Z) nor a duration (15m)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def rfc3339(dt: datetime) -> str:
    """UTC RFC 3339 with microseconds trimmed when zero, ``Z`` suffix."""
    dt = dt.astimezone(UTC)
    text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def ns_to_rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch → RFC 3339 with nanosecond precision."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z" if frac else f"{base}Z"
