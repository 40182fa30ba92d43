"""Shared parameter parsing for API handlers: every bad value becomes a 400 naming the parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from otel_ai.errors import InvalidParameter
from otel_ai.timeutil import parse_instant

DEFAULT_WINDOW = timedelta(hours=1)
_HEX = re.compile(r"[0-9a-fA-F]+")  # fullmatch: "$" would let a trailing newline through


def time_window(
    since: str | None,
    until: str | None,
    *,
    max_days: int = 31,
    default: timedelta = DEFAULT_WINDOW,
    now: datetime | None = None,
    names: tuple[str, str] = ("since", "until"),
) -> tuple[datetime, datetime]:
    """``[since, until)`` from RFC 3339 or relative values; default: the last hour.

    ``names`` are the parameters' names in the 400s (e.g. ``("a_since", "a_until")``).
    """
    now = now or datetime.now(UTC)
    since_name, until_name = names
    try:
        end = parse_instant(until, now=now) if until else now
    except ValueError as exc:
        raise InvalidParameter(until_name, str(exc)) from None
    try:
        start = parse_instant(since, now=now) if since else end - default
    except (ValueError, OverflowError) as exc:
        raise InvalidParameter(since_name, str(exc)) from None
    if end <= start:
        raise InvalidParameter(
            until_name, f"must be after {since_name} ({start.isoformat()} ≥ {end.isoformat()})"
        )
    if end - start > timedelta(days=max_days):
        raise InvalidParameter(since_name, f"window longer than {max_days} days (api.max_window_days)")
    return start, end


def hex_id(name: str, value: str, nbytes: int) -> str:
    """A lowercase hex id of ``nbytes`` bytes, or a 400 that says what is wrong."""
    if len(value) != nbytes * 2 or not _HEX.fullmatch(value):
        raise InvalidParameter(name, f"expected {nbytes * 2} hex characters, got {value!r}")
    return value.lower()
