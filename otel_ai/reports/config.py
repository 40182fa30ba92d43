"""Configuration of scheduled reports (YAML section ``reports``).

A schedule is a cron expression (5 crontab fields, or 6 with a leading seconds field), the length
of the window it reports on (ending at the fire time), the formats to keep and where to deliver
it. Every mistake is refused when the configuration loads, with the key that is wrong
(``reports.schedules.0.cron``, ``reports.schedules.1.deliver.0.webhook`` ...).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from otel_ai.timeutil import parse_duration

Format = Literal["json", "md", "html"]
FORMATS: tuple[Format, ...] = ("json", "md", "html")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookTarget(_Section):
    """``{webhook: URL, secret?, format?: generic|slack}``: POST the report's JSON summary."""

    webhook: str
    # HMAC-SHA256 key for the ``X-OtelAi-Signature`` header; ``secret_env`` reads it from a variable.
    secret: str | None = Field(default=None, repr=False)
    secret_env: str | None = None
    format: Literal["generic", "slack"] = "generic"

    @field_validator("webhook")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s)://host/... URL, got {v!r}")
        return v


class EmailSpec(_Section):
    to: list[str] = Field(min_length=1)
    subject: str | None = None  # default: "[otel-ai] <status>: <name> <window>"

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for addr in v:
            if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", addr):
                raise ValueError(f"not an e-mail address: {addr!r}")
        return v


class EmailTarget(_Section):
    """``{email: {to: [...], subject?}}``: HTML mail with a plain-text alternative."""

    email: EmailSpec


def _target_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return "webhook" if "webhook" in v else "email" if "email" in v else None
    return "webhook" if isinstance(v, WebhookTarget) else "email" if isinstance(v, EmailTarget) else None


Target = Annotated[
    Annotated[WebhookTarget, Tag("webhook")] | Annotated[EmailTarget, Tag("email")],
    Discriminator(
        _target_kind,
        custom_error_type="delivery_target",
        custom_error_message="expected {webhook: URL, ...} or {email: {to: ...}}",
    ),
]


def _check_cron(expr: str) -> str:
    from otel_ai.reports.schedule import parse_cron  # the one parser, also used at run time

    try:
        parse_cron(expr)
    except ValueError as exc:
        raise ValueError(f"{expr!r}: {exc}") from None
    return expr


class Schedule(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    cron: str
    window: str = "24h"
    formats: list[Format] = Field(default_factory=lambda: list(FORMATS))
    deliver: list[Target] = Field(default_factory=list)
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _check_cron(v)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        if parse_duration(v) < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @property
    def window_delta(self) -> timedelta:
        return parse_duration(self.window)


class DeliveryConfig(_Section):
    # Attempts per target (first try included), each bounded by timeout_s.
    max_attempts: int = Field(default=5, ge=1, le=20)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Exponential backoff between attempts: initial * 2^(n-1), capped, with ±jitter share.
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    # A receiver's Retry-After is honoured up to this many seconds.
    max_retry_after_s: float = Field(default=300.0, ge=0)
    # Delivery threads, and the bound on reports waiting for one (beyond it a delivery is dropped
    # and recorded as such).
    workers: int = Field(default=2, ge=1, le=16)
    queue: int = Field(default=100, ge=1)


class SmtpConfig(_Section):
    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False  # implicit TLS (port 465)
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable
    sender: str = "otel-ai@localhost"
    timeout_s: float = Field(default=30.0, gt=0)


class StatusRule(_Section):
    """How the headline status is decided (see docs/reports.md)."""

    incident_error_rate: float = Field(default=0.05, gt=0, le=1)
    degraded_error_rate: float = Field(default=0.01, gt=0, le=1)
    latency_ratio: float = Field(default=2.0, gt=1)
    min_requests: int = Field(default=50, ge=1)


class ReportsConfig(_Section):
    enabled: bool = True
    schedules: list[Schedule] = Field(default_factory=list)
    retention_days: int = Field(default=90, ge=1)
    # A fire time missed by less than this (busy scheduler) still runs; older ones are skipped.
    misfire_grace_s: int = Field(default=3600, ge=1)
    # One catch-up run at start for a schedule whose last fire time passed while the daemon was down.
    catch_up: bool = True
    top_services: int = Field(default=4, ge=1, le=20)
    max_table_services: int = Field(default=25, ge=1, le=500)
    summary: bool = True  # the LLM-written executive summary (the rules provider writes it offline)
    summary_timeout_s: float = Field(default=60.0, gt=0)
    status: StatusRule = Field(default_factory=StatusRule)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)

    @field_validator("schedules")
    @classmethod
    def _unique(cls, v: list[Schedule]) -> list[Schedule]:
        seen: set[str] = set()
        for s in v:
            if s.name in seen:
                raise ValueError(f"two schedules are named {s.name!r}")
            seen.add(s.name)
        return v

    @model_validator(mode="after")
    def _smtp_needed(self) -> ReportsConfig:
        for i, s in enumerate(self.schedules):
            for j, d in enumerate(s.deliver):
                if isinstance(d, EmailTarget) and not self.smtp.host:
                    raise ValueError(
                        f"reports.smtp.host is required by reports.schedules.{i}.deliver.{j}.email"
                    )
        return self
