"""Pacing and retrying one operation's requests: its learned rate, its requests in flight,
backoff with jitter, Retry-After, and a round's allowance of retries."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from exporter.api.errors import ApiError
from exporter.api.transport.ratelimit import (
    INITIAL_IN_FLIGHT,
    AdaptiveRate,
    InFlightLimit,
    RateLimiter,
)
from exporter.config import PollSettings

RETRY_BACKOFF_CAP_SECONDS = 10.0
# A round of many requests (every quota's usage) may retry this share of them, at least
# ``poll.retries``: a service failing every request is asked ~1.1x, not (retries + 1)x.
ROUND_RETRY_SHARE = 0.1

T = TypeVar("T")


class RetryAllowance:
    """The retries left to one round of requests; a request past it fails with its error."""

    def __init__(self, retries: int) -> None:
        self.left = retries

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class PacedRetries:
    """One operation's budget: when a request may go, and whether a failed one goes again.

    Each operation of the API (GetRunningJobs, ListQuotas, GetQuotaUsage) has its own, because
    the service throttles each API apart: a hung or throttled operation fills its own in-flight
    limit and cuts its own rate, never another's.
    """

    def __init__(self, settings: PollSettings) -> None:
        self._settings = settings
        self.rate = AdaptiveRate(settings.rate_limit)
        self._limiter = RateLimiter(
            self.rate, burst=min(settings.page_concurrency, INITIAL_IN_FLIGHT)
        )
        self.in_flight = InFlightLimit(self.rate, settings.page_concurrency)
        self._random = random.Random()
        # The last error a request met: what a poll that ran out of time is failed as.
        self.last_error: ApiError | None = None

    def round_allowance(self, requests: int) -> RetryAllowance:
        """The retries of a round of ``requests`` first attempts: ``ROUND_RETRY_SHARE`` of them,
        at least ``poll.retries``; the round sends at most ``requests`` + that many."""
        return RetryAllowance(max(self._settings.retries, math.ceil(requests * ROUND_RETRY_SHARE)))

    async def call(
        self,
        request: Callable[[], Awaitable[T]],
        allowance: RetryAllowance | None = None,
        *,
        ahead: bool = False,
    ) -> tuple[T, int]:
        """``request()``'s result and the attempts it took; what can heal is tried again.

        The operation's requests share its in-flight limit (learned rate x measured latency,
        a request that timed out counting as an answer as slow as its timeout) and its learned
        rate. Backoff is exponential with full jitter (AWS's "Exponential Backoff and Jitter"),
        and never shorter than the service's ``Retry-After``; throttling also lowers the learned
        request rate. Errors that cannot heal (auth, bad parameters, bad bodies) are raised at
        once, and so is the last error once ``allowance`` has no retry left. A request sent
        ``ahead`` waits for its place in flight at the front of the line.
        """
        settings = self._settings
        for attempt in range(settings.retries + 1):
            await self.in_flight.acquire(ahead)
            # Scheduled now, at the rate as it is now: a throttle of it says nothing about a
            # rate cut while it waited for its slot.
            scheduled_at = time.monotonic()
            sent_at: float | None = None
            try:
                limited = await self._limiter.acquire()
                sent_at = time.monotonic()
                result = await request()
                self.in_flight.observe(time.monotonic() - sent_at)
            except ApiError as error:
                self._failed(error, scheduled_at, sent_at)
                if not error.retryable or attempt == settings.retries:
                    raise
                if allowance is not None and not allowance.take():
                    raise
                retry_after = error.retry_after
            else:
                held_back = self._limiter.take_held_back()
                self.rate.on_success(limited or held_back, time.monotonic())
                return result, attempt + 1
            finally:
                self.in_flight.release()
            await asyncio.sleep(self._backoff(attempt, retry_after))
        raise AssertionError("unreachable")

    def _failed(self, error: ApiError, scheduled_at: float, sent_at: float | None) -> None:
        self.last_error = error
        if error.reason == "throttled":
            self.rate.on_throttled(scheduled_at, time.monotonic())
        elif error.reason == "timeout" and sent_at is not None:
            # No answer within poll.timeout is an answer at least that slow: left out, hung
            # requests would hold the limit at what fast answers measured.
            self.in_flight.observe(time.monotonic() - sent_at)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(RETRY_BACKOFF_CAP_SECONDS, self._settings.retry_backoff * 2**attempt)
        delay = self._random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_BACKOFF_CAP_SECONDS))
        return delay
