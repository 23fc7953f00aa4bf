"""What one request asks for and what it gets: a slice of submission time, a validated page.

``parse_page`` turns a response's status and bytes into a ``Page`` of valid jobs, or raises
``ApiError`` with the fixed reason the failure is counted under.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import RunningJob, parse_job
from exporter.api.wire.running_jobs import ACTION, PAGE_SIZE

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


@dataclass(frozen=True, slots=True, order=True)
class TimeSlice:
    """Jobs submitted in ``[start, end]``, Unix seconds, both included; ``start < end``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError(f"a slice needs start < end, got [{self.start}, {self.end}]")

    @property
    def width(self) -> int:
        return self.end - self.start + 1

    @property
    def splittable(self) -> bool:
        """True when the slice can be cut into two slices of at least two seconds each."""
        return self.width >= 4

    def contains(self, second: int) -> bool:
        return self.start <= second <= self.end


@dataclass(frozen=True, slots=True, order=True)
class JobFilter:
    """Which quotas and owners one request asks for (``quotaNicknameList``, ``jobOwnerList``).

    An empty tuple leaves that list as the target's own filter. A dense second is cut into
    parts by them; values never hold a comma (the lists are sent comma-joined).
    """

    quotas: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()

    def matches(self, quota: str, owner: str) -> bool:
        """True if a job of ``quota`` and ``owner`` passes this filter."""
        return (not self.quotas or quota in self.quotas) and (
            not self.owners or owner in self.owners
        )


# No filter beyond the target's own.
EVERY_JOB = JobFilter()


@dataclass(frozen=True, slots=True)
class Page:
    """One validated response: the slice's ``totalCount`` and the page's records."""

    total_count: int
    jobs: tuple[RunningJob, ...]
    records: int
    invalid: int
    requests: int = 1  # HTTP requests it took, retries included

    @property
    def submitted(self) -> list[int]:
        return [job.submitted_at for job in self.jobs]


def _short(value: object, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_failure(
    status: int,
    error_code: str | None,
    message: str,
    request_id: str | None,
    retry_after: str | None,
    action: str = ACTION,
) -> ApiError:
    """The ``ApiError`` for an HTTP status and the service's ``errorCode`` answering ``action``."""
    delay = parse_retry_after(retry_after)
    code = error_code or ""
    text = f"{action} failed: {_short(message)}" if message else f"{action} failed"
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


def open_envelope(
    status: int, body: bytes, retry_after: str | None = None, action: str = ACTION
) -> tuple[dict, str | None]:
    """The answer's JSON object and its ``requestId``, or the ``ApiError`` it stands for.

    Every operation wraps its answer alike (``requestId``, ``httpCode``, ``errorCode``,
    ``errorMsg``): an error is classified here, once, whichever operation was asked.
    """
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        envelope = None
    if not isinstance(envelope, dict):
        if status != 200:
            raise classify_failure(status, None, "non-JSON error body", None, retry_after, action)
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
        raise classify_failure(effective, error_code, message, request_id, retry_after, action)
    return envelope, request_id


def parse_page(status: int, body: bytes, now: float, retry_after: str | None = None) -> Page:
    """Validate one response; the page's valid jobs, or ``ApiError``."""
    envelope, request_id = open_envelope(status, body, retry_after)
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
