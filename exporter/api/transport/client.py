"""The API over HTTP: one signed GET, its body capped; GetRunningJobs pages parsed on top of it.

The client knows nothing of metrics or of how a window is cut: it reports every request's
outcome to a callback and raises ``ApiError`` (with a fixed ``reason``) when a page cannot be had.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from exporter.api.auth.credentials import CredentialsError, credential_provider
from exporter.api.auth.signing import RequestToSign, canonical_query, sign_request
from exporter.api.connect_errors import describe_transport_error
from exporter.api.errors import ApiError
from exporter.api.transport.aiohttp_transport import AiohttpTransport
from exporter.api.transport.bodies import ACCEPTED_ENCODINGS, content_coding, read_bounded
from exporter.api.transport.ratelimit import AdaptiveRate
from exporter.api.transport.retries import PacedRetries, RetryAllowance
from exporter.api.transport.tls import tls_context
from exporter.api.wire.outcomes import CANCELLED, CONNECTION_ERROR, TIMEOUT, status_label
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice, parse_page
from exporter.api.wire.running_jobs import ACTION, API_VERSION, DATE_FORMAT, PAGE_SIZE, PATH
from exporter.config import PollSettings, Target

MAX_BODY_BYTES = 16 * 1024 * 1024
# A read response's stream (httpx's BoundAsyncStream) refers back to the response: that cycle,
# and aiohttp's answer behind it, about 45 objects a request, waited for the cyclic garbage
# collector, whose full collections of a fleet's heap stop every thread for 0.2-0.3 s.
CLOSED_STREAM = httpx.ByteStream(b"")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """One HTTP answer of the API before parsing: status, capped body, ``Retry-After``."""

    status: int
    body: bytes
    retry_after: str | None


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
    """Fetches one signed page of GetRunningJobs for one target over a pooled HTTP client.

    One client lives as long as its target's poller, so the learned request rates carry from
    one poll to the next. Each operation (``action``) has its own budget (``PacedRetries``):
    its own requests in flight and learned rate, as the service throttles each API apart.
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
        self._endpoint = target.endpoint
        self._filters: dict[str, str] = {}
        if target.owners:
            self._filters["jobOwnerList"] = ",".join(target.owners)
        if target.quotas:
            self._filters["quotaNicknameList"] = ",".join(target.quotas)
        self._budgets: dict[str, PacedRetries] = {ACTION: PacedRetries(settings)}
        # One TLS context for both pools and every target (see ``tls``): building one costs
        # ~30 ms and ~1 MiB.
        tls = tls_context()
        self._http = self._pool(settings.page_concurrency, tls, transport)
        # The quota operations have a pool of their own: hung ones would hold the connections
        # jobs requests wait for (and over httpcore's pool, which checked every connection it
        # held, their idle ones cost ~1.5x the CPU per jobs request). GetQuotaUsage's budget
        # and one ListQuotas request fit in it at once.
        self._quota_http = self._pool(settings.page_concurrency + 1, tls, transport)

    def _pool(
        self, connections: int, tls: ssl.SSLContext, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self._settings.timeout),
            # aiohttp's pool, not httpcore's: its cost per request is flat in the connections
            # it holds (see ``aiohttp_transport``).
            transport=transport or AiohttpTransport(tls, connections),
            follow_redirects=False,
            trust_env=False,
            # Only what ``read_bounded`` inflates within its cap (httpx would offer br, zstd).
            headers={"Accept-Encoding": ACCEPTED_ENCODINGS},
        )

    def budget(self, action: str) -> PacedRetries:
        """``action``'s own requests in flight, learned rate and last error."""
        if action not in self._budgets:
            self._budgets[action] = PacedRetries(self._settings)
        return self._budgets[action]

    def report_to(self, on_request: Callable[[str], None]) -> None:
        """Tell ``on_request`` each GetRunningJobs request's outcome from now on (a reload
        hands the client, and its learned rate, to a new poller of an unchanged target)."""
        self._on_request = on_request

    @property
    def rate(self) -> AdaptiveRate:
        """GetRunningJobs' learned request rate, carried from one poll to the next."""
        return self._budgets[ACTION].rate

    @property
    def request_rate(self) -> float:
        """GetRunningJobs requests per second the client now allows itself."""
        return self._budgets[ACTION].rate.rate

    async def fetch_page_with_retries(
        self, piece: TimeSlice, page_number: int, part: JobFilter = EVERY_JOB, ahead: bool = False
    ) -> Page:
        """One page, paced at GetRunningJobs' learned rate; what can heal is retried (see
        ``PacedRetries``); ``ahead`` of the requests waiting for a place in flight. The page's
        ``requests`` counts every attempt."""
        budget = self._budgets[ACTION]
        page, attempts = await budget.call(
            lambda: self.fetch_page(piece, page_number, part), ahead=ahead
        )
        return replace(page, requests=attempts)

    async def aclose(self) -> None:
        await self._credentials.aclose()
        await self._http.aclose()
        await self._quota_http.aclose()

    async def fetch_page(
        self, piece: TimeSlice, page_number: int, part: JobFilter = EVERY_JOB
    ) -> Page:
        """One page of the jobs submitted in ``piece`` (of ``part`` only), signed and validated.

        ``part``'s lists replace the target's own; a reader takes them from jobs the target's
        filter let through, so they narrow it.
        """
        query = self._query(piece, page_number, part)
        answer = await self.get(PATH, ACTION, query, self._on_request)
        return parse_page(answer.status, answer.body, time.time(), answer.retry_after)

    def _query(self, piece: TimeSlice, page_number: int, part: JobFilter) -> dict[str, str]:
        query = {
            "from": str(piece.start),
            "to": str(piece.end),
            "pageNumber": str(page_number),
            "pageSize": str(PAGE_SIZE),
            **self._filters,
        }
        if part.owners:
            query["jobOwnerList"] = ",".join(part.owners)
        if part.quotas:
            query["quotaNicknameList"] = ",".join(part.quotas)
        return query

    async def call_with_retries(
        self,
        action: str,
        request: Callable[[], Awaitable[T]],
        allowance: RetryAllowance | None = None,
    ) -> tuple[T, int]:
        """``request()`` paced by ``action``'s own budget and retried as a page is (within
        ``allowance``, if given); (result, attempts)."""
        return await self.budget(action).call(request, allowance)

    async def get(
        self,
        path: str,
        action: str,
        query: dict[str, str],
        on_request: Callable[[str], None],
    ) -> RawAnswer:
        """One signed GET of ``action`` on ``path``: its status and capped body, not yet parsed.

        Every operation of the API goes through here, so all share one signer and one
        credential (GetRunningJobs has a pool of connections of its own, the quota operations
        another); ``on_request`` hears each request's outcome, a request cancelled before its
        answer (the poll ended) included.
        """
        try:
            credentials = await self._credentials.get()
        except CredentialsError as error:
            raise ApiError("credentials", str(error)) from None
        request = RequestToSign(
            "GET", self._host, path, query, action, API_VERSION, wire_date(), uuid.uuid4().hex
        )
        headers = sign_request(credentials, request)
        url = f"{self._endpoint}{path}?{canonical_query(query)}"
        status, body, retry_after = await self._send(url, headers, action, on_request)
        return RawAnswer(status, body, retry_after)

    async def _send(
        self, url: str, headers: dict[str, str], action: str, on_request: Callable[[str], None]
    ) -> tuple[int, bytes, str | None]:
        """One request's status, body and Retry-After; each attempt counted once, by outcome.

        ``poll.timeout`` bounds the whole request, the body's last byte included: httpx's own
        timeouts are per read, which a server trickling a byte at a time never trips.
        """
        status: int | None = None
        http = self._http if action == ACTION else self._quota_http
        try:
            async with asyncio.timeout(self._settings.timeout):
                async with http.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    coding = content_coding(response.headers.get("content-encoding"), status)
                    raw = response.aiter_raw()
                    body = await read_bounded(raw, coding, MAX_BODY_BYTES, status)
                retry_after = response.headers.get("retry-after")
                response.stream = CLOSED_STREAM
        except TimeoutError as error:
            on_request(TIMEOUT)
            raise ApiError(
                "timeout",
                f"{action} timed out: {self._host}: no whole response within "
                f"poll.timeout ({self._settings.timeout:g}s)",
                retryable=True,
            ) from error
        except httpx.TimeoutException as error:
            on_request(TIMEOUT)
            raise ApiError(
                "timeout",
                f"{action} timed out: {describe_transport_error(error, self._host)}",
                retryable=True,
            ) from error
        except httpx.TransportError as error:
            on_request(CONNECTION_ERROR)
            raise ApiError(
                "connection",
                f"{action} connection failed: {describe_transport_error(error, self._host)}",
                retryable=True,
            ) from error
        except ApiError:
            on_request(status_label(status or 0))
            raise
        except asyncio.CancelledError:
            on_request(CANCELLED)
            raise
        on_request(status_label(status))
        return status, body, retry_after
