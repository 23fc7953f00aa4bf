"""Pacing and retrying page requests: the learned rate, backoff with jitter, Retry-After."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from exporter.api.errors import ApiError
from exporter.api.pages import Page, TimeSlice
from exporter.api.ratelimit import AdaptiveRate, RateLimiter
from exporter.config import PollSettings

RETRY_BACKOFF_CAP_SECONDS = 10.0

T = TypeVar("T")
FetchPage = Callable[[TimeSlice, int], Awaitable[Page]]


class PacedRetries:
    """Decides when a page request may go, and whether a failed one is tried again."""

    def __init__(self, fetch_page: FetchPage, settings: PollSettings) -> None:
        self._fetch_page = fetch_page
        self._settings = settings
        self.rate = AdaptiveRate(settings.rate_limit)
        self._limiter = RateLimiter(self.rate, burst=settings.page_concurrency)
        self._random = random.Random()

    async def fetch(self, piece: TimeSlice, page_number: int) -> Page:
        """One page; throttling, 5xx, timeouts and dropped connections are retried (``call``).

        The page's ``requests`` counts every attempt.
        """
        page, attempts = await self.call(lambda: self._fetch_page(piece, page_number))
        return replace(page, requests=attempts)

    async def call(self, request: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """``request()``'s result and the attempts it took; what can heal is tried again.

        Backoff is exponential with full jitter (AWS's "Exponential Backoff and Jitter"), and
        never shorter than the service's ``Retry-After``; throttling also lowers the learned
        request rate. Errors that cannot heal (auth, bad parameters, bad bodies) are raised at
        once.
        """
        settings = self._settings
        for attempt in range(settings.retries + 1):
            # Scheduled now, at the rate as it is now: a throttle of it says nothing about a
            # rate cut while it waited for its slot.
            scheduled_at = time.monotonic()
            limited = await self._limiter.acquire()
            try:
                result = await request()
            except ApiError as error:
                if error.reason == "throttled":
                    self.rate.on_throttled(scheduled_at, time.monotonic())
                if not error.retryable or attempt == settings.retries:
                    raise
                await asyncio.sleep(self._backoff(attempt, error.retry_after))
                continue
            self.rate.on_success(limited, time.monotonic())
            return result, attempt + 1
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(RETRY_BACKOFF_CAP_SECONDS, self._settings.retry_backoff * 2**attempt)
        delay = self._random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_BACKOFF_CAP_SECONDS))
        return delay
