"""GetRunningJobs over HTTP: signed requests, validated responses, every page of a window.

The client knows nothing of metrics: it hands each valid job to a callback, reports every
request's outcome to another, and raises ``ApiError`` (with a fixed ``reason``) when the poll
cannot be completed.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from exporter.config import PollSettings, Target
from exporter.credentials import CredentialsError, credential_provider
from exporter.jobs import RunningJob, parse_job
from exporter.ratelimit import RateLimiter
from exporter.signing import canonical_query, sign_request

PATH = "/api/v1/jobs/runningJobs"
ACTION = "GetRunningJobs"
API_VERSION = "2022-01-04"
PAGE_SIZE = 20
MAX_BODY_BYTES = 16 * 1024 * 1024
RETRY_BACKOFF_CAP_SECONDS = 10.0
AUTH_ERROR_PREFIXES = (
    "SignatureDoesNotMatch",
    "SignatureNonceUsed",
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "IncompleteSignature",
    "Forbidden",
    "NoPermission",
    "AccessDenied",
)

# The poll-failure reasons: a fixed set, used as the `reason` label.
REASONS = (
    "throttled",
    "timeout",
    "connection",
    "server_error",
    "client_error",
    "auth",
    "invalid_response",
    "inconsistent",
    "deadline",
    "credentials",
)


class ApiError(Exception):
    """A request or poll that failed; ``str()`` is safe to log (it never holds a secret)."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.error_code = error_code
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.args[0]]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.error_code:
            parts.append(f"errorCode={self.error_code}")
        if self.request_id:
            parts.append(f"requestId={self.request_id}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Page:
    total_count: int
    jobs: tuple[RunningJob, ...]
    records: int
    invalid: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    total_count: int
    pages: int
    records: int
    invalid: int


def _short(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_failure(
    status: int,
    error_code: str | None,
    message: str,
    request_id: str | None,
    retry_after: str | None,
) -> ApiError:
    """The ``ApiError`` for an HTTP status and the service's ``errorCode``."""
    delay = parse_retry_after(retry_after)
    code = error_code or ""
    text = f"GetRunningJobs failed: {_short(message)}" if message else "GetRunningJobs failed"
    common = {"status": status, "error_code": error_code, "request_id": request_id}
    if code.startswith("Throttling") or status == 429:
        return ApiError("throttled", text, retryable=True, retry_after=delay, **common)
    if code.startswith(AUTH_ERROR_PREFIXES) or status in (401, 403):
        return ApiError("auth", text, **common)
    if status >= 500:
        return ApiError("server_error", text, retryable=True, retry_after=delay, **common)
    if status >= 400:
        return ApiError("client_error", text, **common)
    return ApiError("invalid_response", text, **common)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # the HTTP-date form is not worth honouring for sub-minute backoffs
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_page(status: int, body: bytes, now: float, retry_after: str | None = None) -> Page:
    """Validate one response; the page's valid jobs, or ``ApiError``."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        envelope = None
    if not isinstance(envelope, dict):
        if status != 200:
            raise classify_failure(status, None, "non-JSON error body", None, retry_after)
        raise ApiError("invalid_response", "response body is not a JSON object", status=status)
    error_code = envelope.get("errorCode")
    error_code = error_code if isinstance(error_code, str) else None
    request_id = envelope.get("requestId")
    request_id = request_id if isinstance(request_id, str) else None
    message = envelope.get("errorMsg")
    message = message if isinstance(message, str) else ""
    http_code = envelope.get("httpCode", 200)
    if status != 200 or (error_code not in (None, "success")) or http_code != 200:
        effective = status if status != 200 else (http_code if isinstance(http_code, int) else 0)
        raise classify_failure(effective, error_code, message, request_id, retry_after)
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise ApiError("invalid_response", "response has no data object", request_id=request_id)
    total = data.get("totalCount")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ApiError(
            "invalid_response", "data.totalCount is not a whole number", request_id=request_id
        )
    records = data.get("runningJobInfoList")
    if records is None:
        records = []  # the service sends null for an empty page
    if not isinstance(records, list):
        raise ApiError(
            "invalid_response", "data.runningJobInfoList is not a list", request_id=request_id
        )
    if len(records) > PAGE_SIZE:
        raise ApiError(
            "invalid_response",
            f"page holds {len(records)} jobs, more than pageSize {PAGE_SIZE}",
            request_id=request_id,
        )
    jobs = []
    for record in records:
        job = parse_job(record, now)
        if job is not None:
            jobs.append(job)
    return Page(total, tuple(jobs), len(records), len(records) - len(jobs))


def _host_header(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    if parts.port and parts.port != default_port:
        return f"{host}:{parts.port}"
    return host


class RunningJobsClient:
    """Fetches every page of GetRunningJobs for one target over a pooled HTTP client."""

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
        self.last_total_count: int | None = None  # totalCount of the latest page 1 read
        self._limiter = RateLimiter(settings.rate_limit, burst=settings.page_concurrency)
        self._random = random.Random()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout),
            limits=limits,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._credentials.aclose()
        await self._http.aclose()

    async def fetch_page(self, window_start: int, window_end: int, page_number: int) -> Page:
        """One page, signed and validated."""
        query = {
            "from": str(window_start),
            "to": str(window_end),
            "pageNumber": str(page_number),
            "pageSize": str(PAGE_SIZE),
            **self._filters,
        }
        try:
            credentials = await self._credentials.get()
        except CredentialsError as error:
            raise ApiError("credentials", str(error)) from None
        headers = sign_request(
            credentials,
            "GET",
            self._host,
            PATH,
            query,
            ACTION,
            API_VERSION,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            uuid.uuid4().hex,
        )
        url = f"{self._url}?{canonical_query(query)}"
        try:
            async with self._http.stream("GET", url, headers=headers) as response:
                body = await self._read_capped(response)
        except httpx.TimeoutException as error:
            self._on_request("timeout")
            raise ApiError("timeout", "GetRunningJobs timed out", retryable=True) from error
        except httpx.TransportError as error:
            self._on_request("connection_error")
            raise ApiError(
                "connection",
                f"GetRunningJobs connection failed: {type(error).__name__}",
                retryable=True,
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

    async def fetch_page_with_retries(
        self, window_start: int, window_end: int, page_number: int
    ) -> Page:
        """One page; throttling, 5xx, timeouts and dropped connections are retried.

        Backoff is exponential with full jitter (AWS's "Exponential Backoff and Jitter"), and
        never shorter than the service's ``Retry-After``. Errors that cannot heal (auth, bad
        parameters, bad bodies) are raised at once.
        """
        settings = self._settings
        for attempt in range(settings.retries + 1):
            await self._limiter.acquire()
            try:
                return await self.fetch_page(window_start, window_end, page_number)
            except ApiError as error:
                if not error.retryable or attempt == settings.retries:
                    raise
                ceiling = min(RETRY_BACKOFF_CAP_SECONDS, settings.retry_backoff * 2**attempt)
                delay = self._random.uniform(0, ceiling)
                if error.retry_after is not None:
                    delay = max(delay, min(error.retry_after, RETRY_BACKOFF_CAP_SECONDS))
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def fetch_all(
        self, window_start: int, window_end: int, on_job: Callable[[RunningJob], None]
    ) -> FetchResult:
        """Every page of the window: page 1 first, then the rest ``page_concurrency`` at a time.

        Jobs go to ``on_job`` as pages arrive. Raises ``ApiError`` if any page fails, or with
        reason ``inconsistent`` when the pages disagree: a later page reports another
        ``totalCount`` than page 1, or a page holds fewer jobs than its ``totalCount`` promises.
        Either means the list moved under the read, and jobs may have slipped between pages
        unseen; the caller must then discard what it was given.
        """
        semaphore = asyncio.Semaphore(self._settings.page_concurrency)
        counts = {"records": 0, "invalid": 0}
        first_total: int | None = None

        async def fetch(number: int) -> int:
            async with semaphore:
                page = await self.fetch_page_with_retries(window_start, window_end, number)
            promised = min(PAGE_SIZE, max(0, page.total_count - PAGE_SIZE * (number - 1)))
            if page.records < promised:
                raise ApiError(
                    "inconsistent",
                    f"page {number} holds {page.records} jobs where its totalCount "
                    f"{page.total_count} promises {promised}",
                )
            if first_total is not None and page.total_count != first_total:
                raise ApiError(
                    "inconsistent",
                    f"page {number} reports totalCount {page.total_count}, page 1 reported "
                    f"{first_total}",
                )
            # Folded in as it arrives, so a poll never holds all its pages at once.
            counts["records"] += page.records
            counts["invalid"] += page.invalid
            for job in page.jobs:
                on_job(job)
            return page.total_count

        first_total = await fetch(1)
        self.last_total_count = first_total
        pages = max(1, math.ceil(first_total / PAGE_SIZE))
        if pages > 1:
            try:
                async with asyncio.TaskGroup() as group:
                    for number in range(2, pages + 1):
                        group.create_task(fetch(number))
            except* ApiError as failures:
                raise failures.exceptions[0] from None
        return FetchResult(first_total, pages, counts["records"], counts["invalid"])
