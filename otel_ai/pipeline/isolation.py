"""One batch → one ``writer.write``; a refused batch is bisected down to the payloads refused on
their own; an outage opens the breaker.

* retryable ``StorageError`` (an outage) → every payload of the batch is an ``outage`` outcome
  (the caller spools it) and :attr:`IsolatingWriter.storage_down` is set: until a replay
  succeeds, new batches skip storage (a dead storage is not hammered);
* ``DecodeError`` (the engine refused the content) or a non-retryable ``StorageError`` (storage
  refuses this content: not an outage) → the batch is bisected; the payloads refused on their
  own are ``refused`` (400 / 500; counted as dropped), the others are written;
* anything else is a bug in the writer: ``failed`` (500), never spooled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from otel_ai.errors import DecodeError, OtelAiError, StorageError
from otel_ai.model import Payload
from otel_ai.pipeline.outcome import OUTAGE, WRITTEN, Outcome
from otel_ai.pipeline.stats import PipelineStats

log = logging.getLogger(__name__)


class Writer(Protocol):
    def write(self, payloads: Sequence[Payload]) -> None: ...


class IsolatingWriter:
    """See the module docstring. Called from the insert workers and the replay thread."""

    def __init__(self, writer: Writer, stats: PipelineStats) -> None:
        self.writer = writer
        self.stats = stats
        # Set on a retryable StorageError, cleared by the first successful replay: while set, new
        # batches go straight to the spool (a circuit breaker in front of a dead storage).
        self.storage_down = False

    def write(self, payloads: Sequence[Payload]) -> list[Outcome]:
        """One outcome per payload, in order."""
        out = [WRITTEN] * len(payloads)
        self._write(payloads, out, 0)
        return out

    def _write(self, payloads: Sequence[Payload], out: list[Outcome], offset: int) -> None:
        if any(r.kind == "outage" for r in out):  # storage already failed in this batch: do not hammer it
            out[offset : offset + len(payloads)] = [OUTAGE] * len(payloads)
            return
        try:
            self.writer.write(payloads)
            items = sum(p.items for p in payloads)
            self.stats.add(inserted_batches=1, inserted_items=items)
            self.stats.m_items.labels(payloads[0].signal, "inserted").inc(items)
        except StorageError as exc:
            if exc.retryable:
                self.storage_down = True
                self.stats.error(f"storage: {exc.message}")
                out[offset : offset + len(payloads)] = [OUTAGE] * len(payloads)
            else:  # storage refused this content (not an outage): isolate it like an engine refusal
                self._refused(payloads, out, offset, exc, "storage_rejected")
        except DecodeError as exc:
            self._refused(payloads, out, offset, exc, "invalid")
        except Exception as exc:  # a bug, not an outage: fail the requests (500), do not spool
            log.exception("writer failed unexpectedly")
            self.stats.error(f"writer: {exc!r}")
            failed = Outcome("failed", OtelAiError(f"internal error while inserting: {exc!r}"))
            out[offset : offset + len(payloads)] = [failed] * len(payloads)

    def _refused(
        self, payloads: Sequence[Payload], out: list[Outcome], offset: int, exc: OtelAiError, reason: str
    ) -> None:
        """Bisect a refused batch down to the payloads refused on their own; write the rest."""
        if len(payloads) == 1:
            out[offset] = Outcome("refused", exc)
            self.stats.m_dropped.labels(reason).inc(payloads[0].items)
            self.stats.error(f"{reason}: {exc.message}")
            self.stats.add(failed_items=payloads[0].items)
            return
        mid = len(payloads) // 2
        self._write(payloads[:mid], out, offset)
        self._write(payloads[mid:], out, offset + mid)
