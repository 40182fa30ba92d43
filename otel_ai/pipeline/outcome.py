"""What became of one payload the pipeline tried to write: the typed result every stage passes on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from otel_ai.errors import OtelAiError

OutcomeKind = Literal["written", "outage", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """``written``: in storage. ``outage``: storage is unreachable (retryable ``StorageError``), so
    the payload goes to the spool. ``refused``: storage refused this payload on its own
    (``DecodeError``, or a non-retryable ``StorageError``): fail it, never retry it. ``failed``:
    the writer broke (a bug): fail the request, keep a logged/spooled copy for a retry.
    """

    kind: OutcomeKind
    error: OtelAiError | None = None

    @property
    def retry(self) -> bool:
        """Not written and not refused on its own: keep it and try again later."""
        return self.kind in ("outage", "failed")


WRITTEN = Outcome("written")
OUTAGE = Outcome("outage")
