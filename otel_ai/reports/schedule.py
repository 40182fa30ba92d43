"""Cron schedules of reports: parsing, fire times, the scheduler jobs and the catch-up at start.

Expressions are standard crontab (``minute hour day month weekday``, weekday 0 or 7 = Sunday) or
the same with a leading seconds field. APScheduler 3 numbers weekdays from Monday = 0, so numeric
weekdays are translated to names before they reach it. Each schedule becomes one cron job with
coalescing (missed runs collapse into one), ``max_instances=1`` (never two runs of one schedule at
once) and a misfire grace time. The in-memory job store forgets everything at exit, so the last
fire time of each schedule is read back from the report archive: when a fire time passed while
the daemon was down, one catch-up run covers the most recent one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


def _weekdays(field: str) -> str:
    """Crontab weekday numbers (0/7 = Sunday) → APScheduler names; names pass unchanged."""
    out: list[str] = []
    for part in field.split(","):
        m = _NUMERIC.match(part)
        if not m or (m.group(1) == "*" and not m.group(3)):
            out.append(part)
            continue
        lo = 0 if m.group(1) == "*" else int(m.group(1))
        hi = 6 if m.group(1) == "*" else int(m.group(2) or lo)
        step = int(m.group(3) or 1)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step >= 1):
            raise ValueError(f"weekday {part!r} is out of range 0-7")
        out.extend(_DAYS[d] for d in range(lo, hi + 1, step))
    return ",".join(dict.fromkeys(out))


def parse_cron(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A :class:`CronTrigger` from 5 crontab fields, or 6 with seconds first. ``ValueError`` if bad."""
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"expected 5 fields (minute hour day month weekday) or 6 (seconds first), got {len(fields)}"
        )
    second = fields[0] if len(fields) == 6 else "0"
    minute, hour, day, month, dow = fields[-5:]
    try:
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=_weekdays(dow), timezone=timezone)  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def fire_times_after(
    trigger: CronTrigger, after: datetime, until: datetime, limit: int = 10_000
) -> list[datetime]:
    """Fire times in ``(after, until]``, at most ``limit`` of them (the earliest)."""
    out: list[datetime] = []
    prev: datetime | None = None
    t = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    while t is not None and t <= until and len(out) < limit:
        out.append(t)
        prev = t
        t = trigger.get_next_fire_time(prev, prev + timedelta(microseconds=1))
    return out


def last_fire_at_or_before(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The most recent fire time ≤ ``now`` (searching back up to a year, never scanning far)."""
    for back in (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), timedelta(days=32),
                 timedelta(days=367)):  # fmt: skip
        start = now - back
        last: datetime | None = None
        t = trigger.get_next_fire_time(None, start)
        steps = 0
        while t is not None and t <= now and steps < 5000:
            last, steps = t, steps + 1
            t = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))
        if last is not None and steps < 5000:
            return last
    return None


def missed_fire(trigger: CronTrigger, last_run: datetime | None, now: datetime) -> datetime | None:
    """The fire time to catch up at start: the newest one after ``last_run`` that already passed.

    ``None`` when nothing was missed, or when the schedule never ran (nothing to catch up on).
    """
    if last_run is None:
        return None
    latest = last_fire_at_or_before(trigger, now)
    if latest is None or latest <= last_run:
        return None
    return latest


def add_schedule_job(
    scheduler: Any, job_id: str, trigger: CronTrigger, fn: Callable[[], None], misfire_grace_s: int
) -> None:
    """One cron job per schedule: coalesced, one instance at a time, with a misfire grace time."""
    scheduler.add_job(fn, trigger, id=job_id, replace_existing=True, coalesce=True, max_instances=1,
                      misfire_grace_time=misfire_grace_s)  # fmt: skip
