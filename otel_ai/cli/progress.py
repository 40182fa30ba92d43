"""Progress for long commands: a ``rich`` bar with % and ETA on a terminal, plain lines otherwise.

On a terminal the bar redraws in place on stderr; piped into a file or CI log it prints one line
every ``every_s`` seconds instead, so logs stay readable and nothing is lost.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """Report ``update(done, detail)`` against ``total`` (``None``: no end known)."""

    def __init__(
        self,
        description: str,
        total: float | None,
        *,
        stream: TextIO | None = None,
        every_s: float = 10.0,
        force_terminal: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.every_s = every_s
        self.console = Console(file=stream or sys.stderr, force_terminal=force_terminal)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = time.monotonic()
        self._t0 = time.monotonic()

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def __enter__(self) -> Reporter:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}"),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, detail="")
        return self

    def update(self, done: float, detail: str = "") -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, detail=detail)
            return
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        self.console.print(f"  {self.description}{self._plain(done, now)}  {detail}", highlight=False)

    def _plain(self, done: float, now: float) -> str:
        if not self.total:
            return ""
        frac = min(1.0, max(0.0, done / self.total))
        elapsed = now - self._t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else None
        return f" {frac:6.1%}" + (f"  ETA {_hms(eta)}" if eta is not None else "")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def spinner(
    message: str, *, stream: TextIO | None = None, force_terminal: bool | None = None
) -> Iterator[None]:
    """A spinner with elapsed time for one long call with no measurable progress (terminal only)."""
    console = Console(file=stream or sys.stderr, force_terminal=force_terminal)
    if not console.is_terminal:
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        progress.add_task(message, total=None)
        yield
