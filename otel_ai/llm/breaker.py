"""Per-deployment circuit breaker: opens on N consecutive failures OR a failure ratio over a
sliding window (once it holds ``minimum_requests`` calls); after ``cooldown_s`` it lets one
half-open probe through, which closes it on success or re-opens it on failure. Works the same
for a group of one deployment (LiteLLM #40405 is the failure mode this avoids).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from otel_ai.llm.config import BreakerConfig

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._events: deque[tuple[float, bool]] = deque()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False
        self.trips = 0

    @property
    def state(self) -> State:
        with self._lock:
            return self._state(self._clock())

    def _state(self, now: float) -> State:
        if self._opened_at is None:
            return "closed"
        if now - self._opened_at >= self.config.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go to this deployment now? In half-open, only one probe at a time."""
        with self._lock:
            state = self._state(self._clock())
            if state == "closed":
                return True
            if state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def available(self) -> bool:
        """Like :meth:`allow` but without claiming the probe (for filtering and status)."""
        with self._lock:
            state = self._state(self._clock())
            return state == "closed" or (state == "half_open" and not self._probing)

    def release_probe(self) -> None:
        """The claimed probe ended without a verdict (e.g. the caller cancelled)."""
        with self._lock:
            self._probing = False

    def record(self, ok: bool) -> None:
        with self._lock:
            now = self._clock()
            self._events.append((now, ok))
            while self._events and now - self._events[0][0] > self.config.window_s:
                self._events.popleft()
            was_probe, self._probing = self._probing, False
            if ok:
                self._consecutive = 0
                if self._opened_at is not None:  # the half-open probe succeeded
                    self._opened_at = None
                    self._events.clear()
                return
            self._consecutive += 1
            if was_probe or self._opened_at is not None:
                self._opened_at = now  # probe failed: open again for a full cool-down
                return
            failures = sum(1 for _, good in self._events if not good)
            ratio_trip = (
                len(self._events) >= self.config.minimum_requests
                and failures / len(self._events) >= self.config.failure_ratio
            )
            if self._consecutive >= self.config.failure_threshold or ratio_trip:
                self._opened_at = now
                self.trips += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            now = self._clock()
            failures = sum(1 for t, good in self._events if not good and now - t <= self.config.window_s)
            return {
                "state": self._state(now),
                "consecutive_failures": self._consecutive,
                "window_requests": len(self._events),
                "window_failures": failures,
                "trips": self.trips,
                "retry_in_s": None
                if self._opened_at is None
                else max(0.0, round(self.config.cooldown_s - (now - self._opened_at), 3)),
            }
