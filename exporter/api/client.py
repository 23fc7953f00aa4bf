"""GetRunningJobs over HTTP: one page of one slice, signed, validated, retried, rate-limited.

The client knows nothing of metrics or of how a window is cut: it reports every request's
outcome to a callback and raises ``ApiError`` (with a fixed ``reason``) when a page cannot be had.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from exporter.api.connect_errors import describe_transport_error
from exporter.api.credentials import CredentialsError, credential_provider
from exporter.api.errors import ApiError
from exporter.api.pages import Page, TimeSlice, parse_page
from exporter.api.ratelimit import AdaptiveRate, RateLimiter
from exporter.api.signing import RequestToSign, canonical_query, sign_request
from exporter.api.wire import ACTION, API_VERSION, DATE_FORMAT, PAGE_SIZE, PATH
from exporter.config import PollSettings, Target

MAX_BODY_BYTES = 16 * 1024 * 1024
RETRY_BACKOFF_CAP_SECONDS = 10.0


def wire_date() -> str:
    """Now, as x-acs-date wants it."""
    return time.strftime(DATE_FORMAT, time.gmtime())


def _host_header(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    if parts.port and parts.port != default_port:
        return f"{host}:{parts.port}"
    return host


class RunningJobsClient:
    """Fetches pages of GetRunningJobs for one target over a pooled HTTP client.

    One client lives as long as its target's poller, so the learned request rate carries from
    one poll to the next.
    """

    def __init__(
        self,
        target: Target,
        settings: PollSettings,
        *,
        on_request: Callable[[str], None] = lambda code: None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._target = target
        self._settings = settings
        self._on_request = on_request
        self._credentials = credential_provider(target.credentials, min_validity=settings.timeout)
        self._host = _host_header(target.endpoint)
        self._url = target.endpoint + PATH
        self._filters: dict[str, str] = {}
        if target.owners:
            self._filters["jobOwnerList"] = ",".join(target.owners)
        if target.quotas:
            self._filters["quotaNicknameList"] = ",".join(target.quotas)
        limits = httpx.Limits(
            max_connections=settings.page_concurrency,
            max_keepalive_connections=settings.page_concurrency,
        )
        self.rate = AdaptiveRate(settings.rate_limit)
        self._limiter = RateLimiter(self.rate, burst=settings.page_concurrency)
        self._random = random.Random()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout),
            limits=limits,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def request_rate(self) -> float:
        """Requests per second the client now allows itself (learned from throttling)."""
        return self.rate.rate

    async def aclose(self) -> None:
        await self._credentials.aclose()
        await self._http.aclose()

    async def fetch_page(self, piece: TimeSlice, page_number: int) -> Page:
        """One page of the jobs submitted in ``piece``, signed and validated."""
        query = {
            "from": str(piece.start),
            "to": str(piece.end),
            "pageNumber": str(page_number),
            "pageSize": str(PAGE_SIZE),
            **self._filters,
        }
        try:
            credentials = await self._credentials.get()
        except CredentialsError as error:
            raise ApiError("credentials", str(error)) from None
        request = RequestToSign(
            "GET", self._host, PATH, query, ACTION, API_VERSION, wire_date(), uuid.uuid4().hex
        )
        headers = sign_request(credentials, request)
        url = f"{self._url}?{canonical_query(query)}"
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                body = await self._read_capped(response)
        except httpx.TimeoutException as error:
            self._on_request("timeout")
            raise ApiError(
                "timeout",
                f"GetRunningJobs timed out: {describe_transport_error(error, self._host)}",
                retryable=True,
            ) from error
        except httpx.TransportError as error:
            self._on_request("connection_error")
            raise ApiError(
                "connection",
                f"GetRunningJobs connection failed: {describe_transport_error(error, self._host)}",
                retryable=True,
            ) from error
        except httpx.DecodingError as error:
            # A Content-Encoding the body does not honour: the bytes are not the page.
            self._on_request(str(response.status_code))
            raise ApiError(
                "invalid_response",
                f"response body does not decode as its Content-Encoding says: {error}",
                status=response.status_code,
            ) from error
        self._on_request(str(response.status_code))
        return parse_page(
            response.status_code, body, time.time(), response.headers.get("retry-after")
        )

    @staticmethod
    async def _read_capped(response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(
                    "invalid_response",
                    f"response body larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB",
                    status=response.status_code,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def fetch_page_with_retries(self, piece: TimeSlice, page_number: int) -> Page:
        """One page; throttling, 5xx, timeouts and dropped connections are retried.

        Backoff is exponential with full jitter (AWS's "Exponential Backoff and Jitter"), and
        never shorter than the service's ``Retry-After``; throttling also lowers the learned
        request rate. Errors that cannot heal (auth, bad parameters, bad bodies) are raised at
        once. The page's ``requests`` counts every attempt.
        """
        settings = self._settings
        for attempt in range(settings.retries + 1):
            # Scheduled now, at the rate as it is now: a throttle of it says nothing about a
            # rate cut while it waited for its slot.
            scheduled_at = time.monotonic()
            limited = await self._limiter.acquire()
            try:
                page = await self.fetch_page(piece, page_number)
            except ApiError as error:
                if error.reason == "throttled":
                    self.rate.on_throttled(scheduled_at, time.monotonic())
                if not error.retryable or attempt == settings.retries:
                    raise
                await asyncio.sleep(self._backoff(attempt, error.retry_after))
                continue
            self.rate.on_success(limited)
            return replace(page, requests=attempt + 1)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(RETRY_BACKOFF_CAP_SECONDS, self._settings.retry_backoff * 2**attempt)
        delay = self._random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_BACKOFF_CAP_SECONDS))
        return delay
