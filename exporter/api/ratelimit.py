"""The client-side request rate: learned from the service's throttling, shared by a target's polls.

The service's limit is not published and may change, so the rate is found the way TCP finds a
path's capacity: start polite, double while requests succeed and the rate is what holds them
back (slow start), then grow by one request a second per second (additive increase); on a
``Throttling*``/429 answer cut it to ``DECREASE_FACTOR`` of itself (multiplicative decrease, the
CUBIC beta the AWS SDKs' adaptive retry mode uses). The learned rate lives as long as the
target's client, so each poll starts where the last one ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

INITIAL_RATE = 50.0  # requests/s before anything is learned
MIN_RATE = 1.0
DECREASE_FACTOR = 0.7


class AdaptiveRate:
    """The current allowed request rate: AIMD with slow start, capped at ``ceiling``."""

    def __init__(self, ceiling: float, initial: float = INITIAL_RATE) -> None:
        self.ceiling = ceiling
        self.rate = min(initial, ceiling)
        self._slow_start = True
        self._last_cut_at = -1.0

    def on_success(self, limited: bool) -> None:
        """A request succeeded; ``limited`` says whether the rate (not concurrency) delayed it.

        A rate that is not what holds requests back is not raised: it would say nothing about
        what the service accepts (RFC 7661's rule for an application-limited TCP sender).
        """
        if not limited:
            return
        step = 1.0 if self._slow_start else 1.0 / self.rate
        self.rate = min(self.ceiling, self.rate + step)

    def on_throttled(self, scheduled_at: float, now: float) -> None:
        """The service throttled a request scheduled at ``scheduled_at`` (monotonic seconds)."""
        if scheduled_at <= self._last_cut_at:
            return  # scheduled at the old rate: the last cut already answered it
        self._slow_start = False
        self.rate = max(MIN_RATE, self.rate * DECREASE_FACTOR)
        self._last_cut_at = now


class RateLimiter:
    """Spaces requests to at most ``rate.rate`` a second, bursts of up to ``burst`` at once.

    A generic cell rate algorithm: each request is given the earliest start that keeps the
    schedule, so waiters are served in arrival order without a lock.
    """

    def __init__(
        self, rate: AdaptiveRate, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self._burst = max(burst, 1)
        self._clock = clock
        self._next = 0.0  # theoretical arrival time of the next request

    def reserve(self) -> float:
        """Book the next slot; the seconds to wait before using it."""
        interval = 1.0 / self.rate.rate
        now = self._clock()
        arrival = max(self._next, now)
        self._next = arrival + interval
        return max(0.0, arrival - (self._burst - 1) * interval - now)

    async def acquire(self) -> bool:
        """Wait for a slot; True if the rate made the caller wait."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        return delay > 0
