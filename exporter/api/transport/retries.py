"""Pacing and retrying page requests: the learned rate, backoff with jitter, Retry-After."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from exporter.api.errors import ApiError
from exporter.api.transport.ratelimit import (
    INITIAL_IN_FLIGHT,
    AdaptiveRate,
    InFlightLimit,
    RateLimiter,
)
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.config import PollSettings

RETRY_BACKOFF_CAP_SECONDS = 10.0

T = TypeVar("T")
FetchPage = Callable[[TimeSlice, int, JobFilter], Awaitable[Page]]


class PacedRetries:
    """Decides when a request may go, and whether a failed one is tried again."""

    def __init__(self, fetch_page: FetchPage, settings: PollSettings) -> None:
        self._fetch_page = fetch_page
        self._settings = settings
        self.rate = AdaptiveRate(settings.rate_limit)
        self._limiter = RateLimiter(
            self.rate, burst=min(settings.page_concurrency, INITIAL_IN_FLIGHT)
        )
        self.in_flight = InFlightLimit(self.rate, settings.page_concurrency)
        self._random = random.Random()

    async def fetch(self, piece: TimeSlice, page_number: int, part: JobFilter = EVERY_JOB) -> Page:
        """One page; throttling, 5xx, timeouts and dropped connections are retried (``call``).

        The page's ``requests`` counts every attempt.
        """
        page, attempts = await self.call(lambda: self._fetch_page(piece, page_number, part))
        return replace(page, requests=attempts)

    async def call(self, request: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """``request()``'s result and the attempts it took; what can heal is tried again.

        Every operation's requests share the in-flight limit (learned rate x measured latency)
        and the learned rate. Backoff is exponential with full jitter (AWS's "Exponential
        Backoff and Jitter"), and never shorter than the service's ``Retry-After``; throttling
        also lowers the learned request rate. Errors that cannot heal (auth, bad parameters,
        bad bodies) are raised at once.
        """
        settings = self._settings
        for attempt in range(settings.retries + 1):
            await self.in_flight.acquire()
            # Scheduled now, at the rate as it is now: a throttle of it says nothing about a
            # rate cut while it waited for its slot.
            scheduled_at = time.monotonic()
            try:
                limited = await self._limiter.acquire()
                sent_at = time.monotonic()
                result = await request()
                self.in_flight.observe(time.monotonic() - sent_at)
            except ApiError as error:
                if error.reason == "throttled":
                    self.rate.on_throttled(scheduled_at, time.monotonic())
                if not error.retryable or attempt == settings.retries:
                    raise
                retry_after = error.retry_after
            else:
                self.rate.on_success(limited, time.monotonic())
                return result, attempt + 1
            finally:
                self.in_flight.release()
            await asyncio.sleep(self._backoff(attempt, retry_after))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(RETRY_BACKOFF_CAP_SECONDS, self._settings.retry_backoff * 2**attempt)
        delay = self._random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_BACKOFF_CAP_SECONDS))
        return delay
