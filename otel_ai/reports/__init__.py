"""Scheduled anomaly reports: content from stored data, SVG charts, JSON/Markdown/HTML, archive, delivery."""

from __future__ import annotations

from otel_ai.reports.config import ReportsConfig
from otel_ai.reports.service import ReportService, build_report_service

__all__ = ["ReportService", "ReportsConfig", "build_report_service"]
