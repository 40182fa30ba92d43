"""Time parsing for API parameters: RFC 3339 instants or relative durations (``15m``, ``1h``).

Both parse into a bounded range, so no value of any parameter can overflow a ``datetime`` (or a
nanosecond count) further on: an instant lies in [1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z]
(the range the store keeps, see ``otel_ai/otlp/limits.py``), a duration is at most
:data:`MAX_DURATION`. Anything else raises ``ValueError`` with a readable message (the API answers
400 naming the parameter).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DURATION = MAX_INSTANT - MIN_INSTANT


def parse_duration(text: str) -> timedelta:
    """``"15m"`` → 15 minutes, at most :data:`MAX_DURATION`. Raises ``ValueError`` with a readable message."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h, 7d")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def _bounded(dt: datetime, text: str) -> datetime:
    if not MIN_INSTANT <= dt <= MAX_INSTANT:
        raise ValueError(f"{text!r} is outside 1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z")
    return dt


def parse_instant(text: str, *, now: datetime | None = None) -> datetime:
    """An RFC 3339 instant, ``now``, or a relative duration meaning "that long before now"."""
    now = now or datetime.now(UTC)
    t = text.strip()
    if t == "now":
        return now
    if _DURATION.fullmatch(t):
        try:
            return _bounded(now - parse_duration(t), text)
        except OverflowError:
            raise ValueError(f"{text!r} reaches before 1970-01-01T00:00:00Z") from None
    iso = t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t
    try:
        dt = datetime.fromisoformat(iso)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{text!r} is neither RFC 3339 (2026-01-02T03:04:05Z) nor a duration (15m) in range"
        ) from None
    return _bounded(dt, text)


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
