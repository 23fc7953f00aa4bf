"""A client-side request rate limit, shared by every page of a target's polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``rate`` requests a second on average, bursts of up to ``burst`` at once.

    A generic cell rate algorithm: each request is given the earliest start that keeps the
    schedule, so waiters are served in arrival order without a lock.
    """

    def __init__(
        self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = 1.0 / rate
        self._tolerance = (max(burst, 1) - 1) * self._interval
        self._clock = clock
        self._next = 0.0  # theoretical arrival time of the next request

    def reserve(self) -> float:
        """Book the next slot; the seconds to wait before using it."""
        now = self._clock()
        arrival = max(self._next, now)
        self._next = arrival + self._interval
        return max(0.0, arrival - self._tolerance - now)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
