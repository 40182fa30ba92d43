"""Typed response shapes of the reports API (OpenAPI documentation; extra keys allowed)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from otel_ai.api.schemas import Open

Status = Literal["healthy", "degraded", "incident", "failed"]


class ReportWindow(Open):
    start: str = Field(description="RFC 3339, inclusive")
    end: str = Field(description="RFC 3339, exclusive")


class ReportDelivery(Open):
    at: str
    target: str = Field(description="redacted: scheme, host and first path segment, or mailto:")
    kind: str = Field(description="webhook/generic, webhook/slack or email")
    attempt: int
    outcome: Literal["ok", "retry", "failed", "dropped"]
    status_code: int | None
    error: str | None
    duration_ms: float


class ReportItem(Open):
    id: str = Field(description="16 hex characters")
    name: str = Field(description="the schedule's name, or the name given to generate (default adhoc)")
    created_at: str
    window: ReportWindow
    status: Status
    counts: dict[str, int] = Field(
        description="anomalies opened/ongoing/closed, insights, topology changes ..."
    )
    deliveries: list[ReportDelivery] = Field(description="every delivery attempt, oldest first")


class ReportList(Open):
    reports: list[ReportItem] = Field(description="newest first")


class Figure(Open):
    id: str = Field(description="stable figure id, e.g. svc.checkout.error_rate")
    label: str
    value: float | None
    previous: float | None = Field(description="the same figure over the comparison period")
    unit: str


class Headline(Open):
    status: Status
    reasons: list[dict[str, Any]] = Field(description="[{text, refs: [figure or anomaly/insight ids]}]")
    rule: str


class Report(ReportItem):
    comparison: ReportWindow = Field(description="the window of the same length just before")
    error: str | None = Field(description="why the report failed to build (status failed)")
    headline: Headline | None = None
    summary: dict[str, Any] | None = Field(default=None, description="{title, claims, recommendations, llm}")
    anomalies: list[dict[str, Any]] = Field(default_factory=list)
    insights: dict[str, Any] = Field(default_factory=dict)
    topology: dict[str, Any] = Field(default_factory=dict)
    services: list[dict[str, Any]] = Field(default_factory=list)
    ingest: dict[str, Any] = Field(default_factory=dict)
    llm: dict[str, Any] = Field(default_factory=dict)
    series: dict[str, Any] = Field(default_factory=dict, description="the chart data")
    figures: list[Figure] = Field(default_factory=list)


def report_formats() -> dict[int | str, dict[str, Any]]:
    """The 200 answer of ``GET /reports/{id}``: JSON (the record), Markdown or an HTML page."""
    return {200: {"model": Report, "description": "format=json (default), md or html",
                  "content": {"text/markdown": {"schema": {"type": "string"}},
                              "text/html": {"schema": {"type": "string"}}}}}  # fmt: skip
