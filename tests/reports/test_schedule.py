"""Schedules: cron parsing, bad configuration refused naming the key, a cron job firing, catch-up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from otel_ai.config import load_config
from otel_ai.errors import ConfigError
from otel_ai.reports.schedule import last_fire_at_or_before, missed_fire, parse_cron
from tests.reports.conftest import make_service


@pytest.mark.parametrize("expr, after, expect", [
    ("0 8 * * *", "2026-12-01T09:00:00", "2026-12-02T08:00:00"),
    ("0 8 * * 0", "2026-12-01T09:00:00", "2026-12-06T08:00:00"),  # crontab 0 = Sunday (6 Dec 2026)
    ("30 9 * * 1-5", "2026-12-04T10:00:00", "2026-12-07T09:30:00"),  # Friday → next Monday
    ("*/15 * * * *", "2026-12-01T09:01:00", "2026-12-01T09:15:00"),
    ("*/10 * * * * *", "2026-12-01T09:00:01", "2026-12-01T09:00:10"),  # seconds field first
], ids=["daily", "sunday", "weekdays", "quarter-hour", "seconds"])  # fmt: skip
def test_cron_fire_times(expr: str, after: str, expect: str) -> None:
    t = parse_cron(expr).get_next_fire_time(None, datetime.fromisoformat(after).replace(tzinfo=UTC))
    assert t == datetime.fromisoformat(expect).replace(tzinfo=UTC)


def test_last_and_missed_fire_times() -> None:
    trig = parse_cron("0 8 * * *")
    now = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    assert last_fire_at_or_before(trig, now) == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert missed_fire(trig, datetime(2026, 12, 1, 8, tzinfo=UTC), now) == datetime(
        2026, 12, 3, 8, tzinfo=UTC
    )
    assert missed_fire(trig, datetime(2026, 12, 3, 8, tzinfo=UTC), now) is None
    assert missed_fire(trig, None, now) is None  # never ran: nothing to catch up on


@pytest.mark.parametrize("schedule, key", [
    ({"name": "d", "cron": "61 8 * * *"}, "reports.schedules.0.cron"),
    ({"name": "d", "cron": "0 8 * *"}, "reports.schedules.0.cron"),
    ({"name": "d", "cron": "0 8 * * *", "formats": ["pdf"]}, "reports.schedules.0.formats.0"),
    ({"name": "d", "cron": "0 8 * * *", "deliver": [{"webhook": "ftp://x/y"}]}, "reports.schedules.0.deliver.0"),
    ({"name": "d", "cron": "0 8 * * *", "deliver": [{"webhook": "not a url"}]}, "reports.schedules.0.deliver.0"),
    ({"name": "d", "cron": "0 8 * * *", "deliver": [{"pager": "x"}]}, "reports.schedules.0.deliver.0"),
    ({"name": "d", "cron": "0 8 * * *", "window": "yesterday"}, "reports.schedules.0.window"),
    ({"name": "d", "cron": "0 8 * * *", "deliver": [{"email": {"to": ["a@b.c"]}}]}, "reports.smtp.host"),
    ({"name": "d", "cron": "0 8 * * *", "deliver": [{"email": {"to": ["nobody"]}}]}, "reports.schedules.0.deliver.0"),
], ids=["cron-range", "cron-fields", "format", "url-scheme", "url", "target-kind", "window", "smtp-host",
        "address"])  # fmt: skip
def test_bad_schedule_is_refused_naming_the_key(schedule: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={}, overrides={"reports.schedules": [schedule]})
    assert key in str(err.value), str(err.value)


def test_good_schedule_loads() -> None:
    cfg = load_config(None, environ={}, overrides={"reports.schedules": [
        {"name": "morning", "cron": "0 8 * * *", "window": "24h", "formats": ["md", "html", "json"],
         "deliver": [{"webhook": "https://hooks.example.org/x", "secret": "k", "format": "slack"}]}]})  # fmt: skip
    (s,) = cfg.reports.schedules
    assert s.window_delta == timedelta(hours=24) and s.deliver[0].format == "slack"  # type: ignore[union-attr]


def _wait(pred: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    return pred()


def test_cron_schedule_fires(seeded: Any, rules_llm: Any, llm_loop: Any) -> None:
    storage, _ = seeded
    svc = make_service(storage, rules_llm, llm_loop, summary=False,
                       schedules=[{"name": "every-2s", "cron": "*/2 * * * * *", "window": "10m"}])  # fmt: skip
    sched = BackgroundScheduler(timezone="UTC")
    try:
        svc.register_jobs(sched)
        job = sched.get_job("report-every-2s")
        assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time == 3600
        sched.start()
        got = _wait(lambda: svc.list(name="every-2s"))
    finally:
        sched.shutdown(wait=True)
        svc.shutdown()
    assert got, "the cron schedule did not fire"
    r = got[0]
    start, end = (datetime.fromisoformat(r["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert end - start == timedelta(minutes=10) and end.second % 2 == 0  # ends at the fire time
    assert r["status"] in ("healthy", "degraded", "incident")


def test_catch_up_after_restart(seeded: Any, rules_llm: Any, llm_loop: Any) -> None:
    storage, _ = seeded
    cfg = {"summary": False, "schedules": [{"name": "daily-cu", "cron": "0 8 * * *", "window": "24h"}]}
    now = datetime.now(UTC)
    due = last_fire_at_or_before(parse_cron("0 8 * * *"), now)
    assert due is not None
    first = make_service(storage, rules_llm, llm_loop, **cfg)  # the run before the daemon went down
    first.run_schedule("daily-cu", due - timedelta(days=2))
    first.shutdown()

    restarted = make_service(storage, rules_llm, llm_loop, **cfg)  # a new process: state from the archive
    sched = BackgroundScheduler(timezone="UTC")
    try:
        assert restarted.register_jobs(sched, now=now) == ["daily-cu"]
        sched.start()
        got = _wait(lambda: [r for r in restarted.list(name="daily-cu") if r["window"]["end"].startswith(
            due.strftime("%Y-%m-%dT%H:%M"))])  # fmt: skip
        assert len(got) == 1, "exactly one catch-up run, for the most recent missed fire time"
        restarted._job("daily-cu")()  # the cron job reaching the same fire time does not run it again
        again = [r for r in restarted.list(name="daily-cu") if r["window"]["end"] == got[0]["window"]["end"]]
        assert len(again) == 1
        assert (
            restarted.register_jobs(BackgroundScheduler(timezone="UTC"), now=now) == []
        )  # nothing missed now
    finally:
        sched.shutdown(wait=True)
        restarted.shutdown()


def test_failed_build_is_recorded_with_the_reason(seeded: Any, rules_llm: Any, llm_loop: Any) -> None:
    storage, window = seeded

    class Broken:
        def list(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("anomaly store unreachable")

    svc = make_service(storage, rules_llm, llm_loop, summary=False,
                       schedules=[{"name": "fails", "cron": "0 8 * * *", "window": "1h"}])  # fmt: skip
    svc.content.sources.anomaly = Broken()
    try:
        doc = svc.run_schedule("fails", window.end)
        assert doc["status"] == "failed" and "anomaly store unreachable" in doc["error"]
        (listed,) = [r for r in svc.list(name="fails") if r["id"] == doc["id"]]
        assert listed["status"] == "failed" and "unreachable" in listed["error"]
        assert svc.store.last_scheduled()["fails"] == window.end  # a failed run still counts as run
    finally:
        svc.shutdown()
