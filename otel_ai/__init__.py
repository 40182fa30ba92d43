"""otel-ai: OTLP → ClickHouse daemon that turns telemetry into architectural understanding."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
