"""GetRunningJobs over HTTP: one page of one slice, signed, sent, its body capped and validated.

The client knows nothing of metrics or of how a window is cut: it reports every request's
outcome to a callback and raises ``ApiError`` (with a fixed ``reason``) when a page cannot be had.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from exporter.api.connect_errors import describe_transport_error
from exporter.api.credentials import CredentialsError, credential_provider
from exporter.api.errors import ApiError
from exporter.api.pages import EVERY_JOB, JobFilter, Page, TimeSlice, parse_page
from exporter.api.ratelimit import AdaptiveRate
from exporter.api.retries import PacedRetries
from exporter.api.signing import RequestToSign, canonical_query, sign_request
from exporter.api.wire import ACTION, API_VERSION, DATE_FORMAT, PAGE_SIZE, PATH
from exporter.config import PollSettings, Target

MAX_BODY_BYTES = 16 * 1024 * 1024


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
        self._retries = PacedRetries(self.fetch_page, settings)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout),
            limits=limits,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def rate(self) -> AdaptiveRate:
        """The learned request rate, carried from one poll to the next."""
        return self._retries.rate

    @property
    def request_rate(self) -> float:
        """Requests per second the client now allows itself (learned from throttling)."""
        return self._retries.rate.rate

    async def fetch_page_with_retries(
        self, piece: TimeSlice, page_number: int, part: JobFilter = EVERY_JOB
    ) -> Page:
        """One page, paced at the learned rate; what can heal is retried (see ``PacedRetries``)."""
        return await self._retries.fetch(piece, page_number, part)

    async def aclose(self) -> None:
        await self._credentials.aclose()
        await self._http.aclose()

    async def fetch_page(
        self, piece: TimeSlice, page_number: int, part: JobFilter = EVERY_JOB
    ) -> Page:
        """One page of the jobs submitted in ``piece`` (of ``part`` only), signed and validated.

        ``part``'s lists replace the target's own; a reader takes them from jobs the target's
        filter let through, so they narrow it.
        """
        query = self._query(piece, page_number, part)
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
