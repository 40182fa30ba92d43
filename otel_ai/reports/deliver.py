"""Delivery of reports: signed webhooks (generic JSON or Slack blocks) and e-mail over SMTP.

Deliveries run on their own small thread pool with a bounded backlog, so a slow or dead receiver
never blocks ingest, the API or the scheduler: it costs its retries and nothing else. Each target
is tried up to ``max_attempts`` times, each attempt bounded by ``timeout_s``; between attempts the
wait grows exponentially with jitter, or follows the receiver's ``Retry-After`` (capped). Every
attempt is recorded on the report (``deliveries``) with its outcome.

Signature (webhooks with a secret): ``X-OtelAi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">``. The timestamp is fresh on every attempt, so a receiver can reject old ones (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry, Counter

from otel_ai import __version__
from otel_ai.reports.config import EmailTarget, ReportsConfig, Schedule, WebhookTarget
from otel_ai.reports.render import summary_of, to_html, to_json, to_markdown
from otel_ai.timeutil import rfc3339

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-OtelAi-Signature"
Record = Callable[[str, dict[str, Any]], None]


def _text(v: bytes | str) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else v


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-OtelAi-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute the HMAC and reject stale timestamps (replays)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, t, body).split("v1=")[1], parts.get("v1", ""))


def redact_url(url: str) -> str:
    """Scheme, host and first path segment only: webhook URLs often carry their secret in the path."""
    p = urlsplit(url)
    host = p.hostname or ""
    port = f":{p.port}" if p.port else ""
    segs = [s for s in p.path.split("/") if s]
    path = f"/{segs[0]}" + ("/…" if len(segs) > 1 else "") if segs else ""
    return f"{p.scheme}://{host}{port}{path}"


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def slack_payload(doc: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible message (``text`` fallback + Block Kit blocks) of the report summary."""
    s = summary_of(doc)
    c = s["counts"]
    status = s["status"].upper()
    head = f"otel-ai report {s['name']}: {status}"
    window = f"{s['window']['start']} → {s['window']['end']}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Window:* {window}\n*Status:* {status}"}},
    ]
    if c:
        fields = [("Anomalies opened", c.get("anomalies_opened", 0)), ("Ongoing", c.get("anomalies_ongoing", 0)),
                  ("Closed", c.get("anomalies_closed", 0)), ("Insights", c.get("insights", 0)),
                  ("Deploys", c.get("deploys", 0)), ("New services", c.get("new_services", 0))]  # fmt: skip
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]}
        )
    reasons = (s.get("headline") or {}).get("reasons") or []
    if reasons:
        text = "\n".join(f"• {r['text']}" for r in reasons[:8])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    if s.get("summary") and s["summary"].get("claims"):
        text = f"*{s['summary']['title']}*\n" + "\n".join(
            f"• {x['text']}" for x in s["summary"]["claims"][:5]
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    if s.get("error"):
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Failed:* {s['error']}"[:2900]}}
        )
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"report `{s['id']}` · {s['links']['html']}"}]})  # fmt: skip
    return {"text": head, "blocks": blocks}


class Deliverer:
    """Runs deliveries on ``delivery.workers`` threads; at most ``delivery.queue`` reports wait."""

    def __init__(self, config: ReportsConfig, record: Record, registry: CollectorRegistry | None = None,
                 *, environ: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.cfg, self.record = config, record
        self.environ = os.environ if environ is None else environ
        self._pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._pending = 0
        self._lock = threading.Lock()
        reg = registry if registry is not None else CollectorRegistry()
        self.m_attempts = Counter("otel_ai_report_delivery_attempts", "Report delivery attempts by kind and outcome",
                                  ["kind", "outcome"], registry=reg)  # fmt: skip

    def start(self) -> None:
        if self._pool is None:
            self._stop.clear()
            self._pool = ThreadPoolExecutor(self.cfg.delivery.workers, thread_name_prefix="report-delivery")

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop retrying (waits are interrupted), let running attempts end, bounded by their timeout."""
        self._stop.set()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, doc: dict[str, Any], schedule: Schedule) -> bool:
        """Queue the deliveries of ``doc``; ``False`` (recorded as ``dropped``) when the backlog is full."""
        if not schedule.deliver:
            return True
        with self._lock:
            full = self._pending >= self.cfg.delivery.queue or self._pool is None
            if not full:
                self._pending += 1
        if full:
            for t in schedule.deliver:
                self._note(
                    doc["id"], self._label(t), self._kind(t), 0, "dropped", error="delivery backlog full"
                )
            return False
        assert self._pool is not None
        self._pool.submit(self._run, doc, schedule)
        return True

    def _run(self, doc: dict[str, Any], schedule: Schedule) -> None:
        try:
            self.deliver(doc, schedule)
        except Exception:
            log.exception("report %s: delivery failed unexpectedly", doc["id"])
        finally:
            with self._lock:
                self._pending -= 1

    def deliver(self, doc: dict[str, Any], schedule: Schedule) -> list[str]:
        """Deliver to every target now (in this thread); the final outcome per target."""
        out = []
        for target in schedule.deliver:
            if isinstance(target, WebhookTarget):
                out.append(self._webhook(doc, target))
            else:
                out.append(self._email(doc, target, schedule.formats))
        return out

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _kind(t: WebhookTarget | EmailTarget) -> str:
        return f"webhook/{t.format}" if isinstance(t, WebhookTarget) else "email"

    @staticmethod
    def _label(t: WebhookTarget | EmailTarget) -> str:
        return redact_url(t.webhook) if isinstance(t, WebhookTarget) else "mailto:" + ",".join(t.email.to)

    def _note(self, rid: str, target: str, kind: str, attempt: int, outcome: str, *, code: int | None = None,
              error: str | None = None, started: float | None = None) -> None:  # fmt: skip
        self.m_attempts.labels(kind, outcome).inc()
        rec = {"at": rfc3339(datetime.now(UTC)), "target": target, "kind": kind, "attempt": attempt,
               "outcome": outcome, "status_code": code, "error": error,
               "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else 0.0}  # fmt: skip
        try:
            self.record(rid, rec)
        except Exception as exc:  # the archive being down must not stop the delivery itself
            log.warning("report %s: cannot record a delivery attempt: %s", rid, exc)

    def _backoff(self, attempt: int, hint: float | None) -> float:
        d = self.cfg.delivery
        if hint is not None:
            return min(hint, d.max_retry_after_s)
        base = min(d.backoff_max_s, d.backoff_initial_s * 2 ** (attempt - 1))
        return max(0.0, base * (1 + d.jitter * (2 * random.random() - 1)))

    def _secret(self, t: WebhookTarget) -> str | None:
        if t.secret:
            return t.secret
        return self.environ.get(t.secret_env) if t.secret_env else None

    # -- webhooks -----------------------------------------------------------------------------------
    def _webhook(self, doc: dict[str, Any], t: WebhookTarget) -> str:
        payload = slack_payload(doc) if t.format == "slack" else summary_of(doc)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        secret, d = self._secret(t), self.cfg.delivery
        label, kind = redact_url(t.webhook), self._kind(t)
        outcome = "failed"
        with httpx.Client(timeout=httpx.Timeout(d.timeout_s), follow_redirects=False) as client:
            for attempt in range(1, d.max_attempts + 1):
                headers = {"Content-Type": "application/json", "User-Agent": f"otel-ai/{__version__}",
                           "X-OtelAi-Report-Id": doc["id"], "X-OtelAi-Delivery-Attempt": str(attempt)}  # fmt: skip
                if secret:
                    headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
                started = time.perf_counter()
                hint, code, error, retry = None, None, None, True
                try:
                    resp = client.post(t.webhook, content=body, headers=headers)
                    code = resp.status_code
                    if 200 <= code < 300:
                        self._note(doc["id"], label, kind, attempt, "ok", code=code, started=started)
                        return "ok"
                    retry = code in (408, 425, 429) or code >= 500
                    hint = retry_after_s(resp.headers.get("Retry-After"))
                    error = f"HTTP {code}"
                except httpx.TimeoutException:
                    error = f"timed out after {d.timeout_s:g}s"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                last = attempt == d.max_attempts or not retry
                outcome = "failed" if last else "retry"
                self._note(doc["id"], label, kind, attempt, outcome, code=code, error=error, started=started)
                if last or self._stop.wait(self._backoff(attempt, hint)):
                    break
        return outcome

    # -- e-mail -------------------------------------------------------------------------------------
    def message(self, doc: dict[str, Any], t: EmailTarget, formats: Sequence[str]) -> EmailMessage:
        """HTML body with a plain-text (Markdown) alternative; JSON attached when ``json`` is a format."""
        smtp = self.cfg.smtp
        msg = EmailMessage()
        subject = (
            t.email.subject or f"[otel-ai] {doc['status'].upper()}: {doc['name']} {doc['window']['start']}"
        )
        msg["Subject"], msg["From"], msg["To"] = subject, smtp.sender, ", ".join(t.email.to)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or "localhost")
        msg.set_content(to_markdown(doc, charts=False))
        if "html" in formats or not formats:
            msg.add_alternative(to_html(doc), subtype="html")
        if "json" in formats:
            msg.add_attachment(to_json(doc).encode(), maintype="application", subtype="json",
                               filename=f"report-{doc['id']}.json")  # fmt: skip
        return msg

    def _email(self, doc: dict[str, Any], t: EmailTarget, formats: Sequence[str]) -> str:
        d = self.cfg.delivery
        label, kind = self._label(t), "email"
        msg = self.message(doc, t, formats)
        outcome = "failed"
        for attempt in range(1, d.max_attempts + 1):
            started = time.perf_counter()
            code, error, retry = None, None, True
            try:
                self._send(msg)
                self._note(doc["id"], label, kind, attempt, "ok", started=started)
                return "ok"
            except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS required but not offered
                error, retry = f"{exc}", False
            except smtplib.SMTPResponseException as exc:
                code, retry = exc.smtp_code, 400 <= exc.smtp_code < 500
                error = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)[:200]}"
            except smtplib.SMTPRecipientsRefused as exc:
                error, retry = f"recipients refused: {sorted(exc.recipients)}", False
            except (smtplib.SMTPException, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            last = attempt == d.max_attempts or not retry
            outcome = "failed" if last else "retry"
            self._note(doc["id"], label, kind, attempt, outcome, code=code, error=error, started=started)
            if last or self._stop.wait(self._backoff(attempt, None)):
                break
        return outcome

    def _send(self, msg: EmailMessage) -> None:
        smtp = self.cfg.smtp
        assert smtp.host is not None  # the config refuses e-mail targets without a host
        timeout = self.cfg.delivery.timeout_s if smtp.timeout_s is None else smtp.timeout_s
        cls = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
        with cls(smtp.host, smtp.port, timeout=timeout) as s:
            if smtp.starttls and not smtp.ssl:
                s.starttls(context=ssl.create_default_context())
            if smtp.username:
                s.login(smtp.username, self.environ.get(smtp.password_env or "", ""))
            s.send_message(msg)
