"""Bounded queue → batches → storage, with a durable disk spool (at-least-once acknowledgement)."""

from __future__ import annotations

from otel_ai.pipeline.core import Pipeline
from otel_ai.pipeline.isolation import Writer
from otel_ai.pipeline.spool import Spool, SpoolFull

__all__ = ["Pipeline", "Spool", "SpoolFull", "Writer"]
