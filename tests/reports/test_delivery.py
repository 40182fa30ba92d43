"""Delivery against real loopback receivers: signed webhooks, retries, timeouts, Slack blocks, SMTP."""

from __future__ import annotations

import email
import json
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from otel_ai.reports.config import ReportsConfig, Schedule
from otel_ai.reports.deliver import SIGNATURE_HEADER, Deliverer, redact_url, retry_after_s, sign, verify
from otel_ai.reports.render import summary_of
from otel_ai.testing.daemons import free_port
from tests.reports.conftest import make_service
from tests.reports.receivers import WebhookReceiver

SECRET = "s3cr3t-for-tests"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.stop()


def _deliverer(**delivery: Any) -> tuple[Deliverer, list[dict[str, Any]]]:
    attempts: list[dict[str, Any]] = []
    cfg = ReportsConfig.model_validate({"delivery": {"backoff_initial_s": 0.01, "jitter": 0, **delivery},
                                        "smtp": {"host": "127.0.0.1"}})  # fmt: skip
    return Deliverer(cfg, lambda rid, a: attempts.append({"report": rid, **a})), attempts


def _sched(*targets: dict[str, Any], formats: list[str] | None = None) -> Schedule:
    return Schedule.model_validate({"name": "t", "cron": "0 8 * * *", "deliver": list(targets),
                                    "formats": formats or ["json", "md", "html"]})  # fmt: skip


def test_signed_webhook_verifies_and_rejects_tampering_and_replays(
    report: dict[str, Any], receiver: Any
) -> None:
    receiver.start()
    d, attempts = _deliverer()
    assert d.deliver(report, _sched({"webhook": receiver.url, "secret": SECRET})) == ["ok"]
    (hit,) = receiver.hits
    header = hit.headers[SIGNATURE_HEADER]
    assert verify(SECRET, header, hit.body)
    assert not verify(SECRET, header, hit.body + b" ")
    assert not verify("other-secret", header, hit.body)
    assert not verify(SECRET, header, hit.body, now=time.time() + 3600)  # a replay an hour later
    assert json.loads(hit.body) == json.loads(json.dumps(summary_of(report)))
    assert hit.headers["X-OtelAi-Report-Id"] == report["id"]
    assert [(a["outcome"], a["status_code"], a["attempt"]) for a in attempts] == [("ok", 200, 1)]
    assert attempts[0]["target"] == receiver.url.rsplit("/", 1)[0] + "/…"


def test_unsigned_without_secret(report: dict[str, Any], receiver: Any) -> None:
    receiver.start()
    d, _ = _deliverer()
    d.deliver(report, _sched({"webhook": receiver.url}))
    assert SIGNATURE_HEADER not in receiver.hits[0].headers


def test_500_then_200_is_retried_honouring_retry_after(report: dict[str, Any], receiver: Any) -> None:
    receiver.script = [(500, {"Retry-After": "1"}, 0.0), (200, {}, 0.0)]
    receiver.start()
    d, attempts = _deliverer()
    assert d.deliver(report, _sched({"webhook": receiver.url, "secret": SECRET})) == ["ok"]
    assert len(receiver.hits) == 2
    assert receiver.hits[1].at - receiver.hits[0].at >= 0.9  # waited as Retry-After asked
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [("retry", 500), ("ok", 200)]
    assert all(verify(SECRET, h.headers[SIGNATURE_HEADER], h.body) for h in receiver.hits)


def test_hanging_receiver_is_cut_off_by_the_timeout(report: dict[str, Any], receiver: Any) -> None:
    receiver.script = [(200, {}, 5.0)]
    receiver.start()
    d, attempts = _deliverer(timeout_s=0.4, max_attempts=2)
    # the receiver would answer 200 after 5 s: two timed-out attempts prove the cut-off
    assert d.deliver(report, _sched({"webhook": receiver.url})) == ["failed"]
    assert [a["outcome"] for a in attempts] == ["retry", "failed"]
    assert all("timed out" in a["error"] for a in attempts)


def test_client_error_is_not_retried(report: dict[str, Any], receiver: Any) -> None:
    receiver.script = [(403, {}, 0.0)]
    receiver.start()
    d, attempts = _deliverer()
    assert d.deliver(report, _sched({"webhook": receiver.url})) == ["failed"]
    assert len(receiver.hits) == 1 and attempts[0]["status_code"] == 403


def test_slack_blocks(report: dict[str, Any], receiver: Any) -> None:
    receiver.start()
    d, _ = _deliverer()
    d.deliver(report, _sched({"webhook": receiver.url, "format": "slack"}))
    body = json.loads(receiver.hits[0].body)
    assert "INCIDENT" in body["text"]
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds[0] == "header" and "section" in kinds and kinds[-1] == "context"
    assert any("payment" in json.dumps(b) for b in body["blocks"])


@pytest.mark.parametrize("value, expect", [("3", 3.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None),
                                           (None, None)], ids=["seconds", "past-date", "junk", "absent"])  # fmt: skip
def test_retry_after_parsing(value: str | None, expect: float | None) -> None:
    assert retry_after_s(value) == expect


def test_redaction_keeps_secrets_out_of_records() -> None:
    assert (
        redact_url("https://hooks.slack.com/services/T000/B000/XXXX?x=1")
        == "https://hooks.slack.com/services/…"
    )
    assert sign("k", 1, b"{}").startswith("t=1,v1=")


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox, port = _Inbox(), free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    yield inbox, port
    ctl.stop()


def _mailer(port: int, **smtp: Any) -> tuple[Deliverer, list[dict[str, Any]]]:
    attempts: list[dict[str, Any]] = []
    cfg = ReportsConfig.model_validate({"smtp": {"host": "127.0.0.1", "port": port, "sender": "reports@example.org",
                                                 **smtp}, "delivery": {"max_attempts": 2, "backoff_initial_s": 0.01}})  # fmt: skip
    return Deliverer(cfg, lambda rid, a: attempts.append(a)), attempts


def test_email_is_html_with_a_text_alternative(report: dict[str, Any], smtp: Any) -> None:
    inbox, port = smtp
    d, attempts = _mailer(port)
    target = {"email": {"to": ["oncall@example.org", "sre@example.org"]}}
    assert d.deliver(report, _sched(target)) == ["ok"]
    ((rcpts, raw),) = inbox.messages
    assert rcpts == ["oncall@example.org", "sre@example.org"]
    msg = email.message_from_bytes(raw)
    assert "INCIDENT" in msg["Subject"] and msg["From"] == "reports@example.org"
    parts: list[Message] = list(msg.walk())
    types = [p.get_content_type() for p in parts]
    assert "multipart/alternative" in types and "text/plain" in types and "text/html" in types
    assert "application/json" in types  # the canonical record is attached when json is a format
    text = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    html = next(p for p in parts if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert report["id"] in text and "## Service health" in text
    assert "<svg" in html and report["id"] in html
    assert attempts[0]["outcome"] == "ok" and attempts[0]["target"].startswith("mailto:oncall@example.org")


def test_starttls_required_but_not_offered_fails_once(report: dict[str, Any], smtp: Any) -> None:
    inbox, port = smtp
    d, attempts = _mailer(port, starttls=True)
    assert d.deliver(report, _sched({"email": {"to": "oncall@example.org"}})) == ["failed"]
    assert not inbox.messages and len(attempts) == 1 and "STARTTLS" in attempts[0]["error"]


def test_scheduled_delivery_runs_off_thread_and_is_recorded(seeded: Any, rules_llm: Any, llm_loop: Any,
                                                             receiver: Any) -> None:  # fmt: skip
    receiver.script = [(503, {"Retry-After": "0"}, 0.3), (200, {}, 0.0)]
    receiver.start()
    storage, window = seeded
    svc = make_service(storage, rules_llm, llm_loop, summary=False, schedules=[
        {"name": "deliv", "cron": "0 8 * * *", "window": "1h", "deliver": [{"webhook": receiver.url, "secret": SECRET}]}],
        delivery={"backoff_initial_s": 0.01})  # fmt: skip
    try:
        doc = svc.run_schedule("deliv", window.end)
        assert doc["deliveries"] == [] and len(receiver.hits) <= 1  # returned before the delivery finished
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(svc.get(doc["id"])["deliveries"]) < 2:
            time.sleep(0.2)
        got = svc.get(doc["id"])["deliveries"]
        assert [(a["attempt"], a["outcome"], a["status_code"]) for a in got] == [
            (1, "retry", 503),
            (2, "ok", 200),
        ]
        listed = next(r for r in svc.list(name="deliv") if r["id"] == doc["id"])
        assert [a["outcome"] for a in listed["deliveries"]] == ["retry", "ok"]
    finally:
        svc.shutdown()
