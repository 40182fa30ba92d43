"""Scheduled anomaly reports: content from stored data, SVG charts, JSON/Markdown/HTML, archive, delivery.

The service lives in :mod:`otel_ai.reports.service`; this package file stays empty so that loading
the configuration (which composes :mod:`otel_ai.reports.config`) imports nothing else.
"""
