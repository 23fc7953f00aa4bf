"""The quota operations over the target's one signed client: ListQuotas walked, GetQuotaUsage.

Requests share the client's signer, credential and connections; each operation has its own
requests in flight and learned rate (``RunningJobsClient.budget``), and they are retried as
GetRunningJobs pages are. A permission error names the RAM action the policy lacks. A listing
is bounded as a jobs poll is: in quotas (``metrics.max_quotas_per_target``) and in bytes
(``MAX_LISTING_BYTES``), past either it fails as ``too_many_groups``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from exporter.api.errors import ApiError
from exporter.api.transport.client import RawAnswer, RunningJobsClient
from exporter.api.transport.retries import RetryAllowance
from exporter.api.wire.quota_usage import (
    USAGE_ACTION,
    USAGE_RAM_ACTION,
    QuotaUsage,
    parse_usage,
    usage_path,
    usage_query,
)
from exporter.api.wire.quotas import (
    LIST_QUOTAS_ACTION,
    LIST_QUOTAS_RAM_ACTION,
    MAX_QUOTA_PAGES,
    QUOTAS_PATH,
    QUOTAS_PER_PAGE,
    QuotaCapacity,
    QuotaPage,
    list_quotas_query,
    parse_quota_page,
)

T = TypeVar("T")
# The answers' bytes one ListQuotas walk may read: 10 000 quotas with every field take ~10 MiB.
MAX_LISTING_BYTES = 32 * 1024 * 1024
RAM_ACTIONS = {LIST_QUOTAS_ACTION: LIST_QUOTAS_RAM_ACTION, USAGE_ACTION: USAGE_RAM_ACTION}


@dataclass(frozen=True, slots=True)
class QuotaListing:
    """Every quota ListQuotas lists, in its order, with the requests and skipped values."""

    quotas: tuple[QuotaCapacity, ...]
    requests: int
    skipped: int


PERMISSION_CODES = ("Forbidden", "NoPermission", "AccessDenied")


def naming_ram_action(error: ApiError, action: str) -> ApiError:
    """A permission error says which RAM action to grant; others pass unchanged."""
    denied = error.status == 403 or (error.error_code or "").startswith(PERMISSION_CODES)
    if error.reason == "auth" and denied:
        error.args = (f"{error.args[0]} (the RAM policy must allow {RAM_ACTIONS[action]})",)
    return error


class QuotaClient:
    """Reads ListQuotas and GetQuotaUsage for one target; raises ``ApiError`` on failure."""

    def __init__(
        self,
        client: RunningJobsClient,
        on_request: Callable[[str, str], None] = lambda action, code: None,
        per_page: int = QUOTAS_PER_PAGE,
        max_quotas: int = 100,
    ) -> None:
        self._client = client
        self._on_request = on_request
        self._per_page = per_page
        self._max_quotas = max_quotas

    async def _get(
        self,
        path: str,
        action: str,
        query: dict[str, str],
        parse: Callable[[RawAnswer], T],
        allowance: RetryAllowance | None = None,
    ) -> tuple[T, int]:
        """One request parsed, paced and retried as a page is (throttling in the body too)."""

        def heard(code: str) -> None:
            self._on_request(action, code)

        async def once() -> T:
            return parse(await self._client.get(path, action, query, heard))

        try:
            return await self._client.call_with_retries(action, once, allowance)
        except ApiError as error:
            raise naming_ram_action(error, action) from None

    async def _page(self, marker: str, read: list[int]) -> tuple[QuotaPage, int]:
        """One page; each answer's size (retried ones too) is added to ``read[0]``."""
        query = list_quotas_query(marker, self._per_page)

        def parse(answer: RawAnswer) -> QuotaPage:
            read[0] += len(answer.body)
            return parse_quota_page(answer.status, answer.body, answer.retry_after)

        return await self._get(QUOTAS_PATH, LIST_QUOTAS_ACTION, query, parse)

    async def list_quotas(self) -> QuotaListing:
        """Every page, marker after marker, until the marker comes back empty.

        A quota listed twice (the list moved between pages) is kept once and counted skipped.
        More than ``max_quotas`` quotas, or more than ``MAX_LISTING_BYTES`` read, fail the walk
        as ``too_many_groups`` at the page that passes the bound.
        """
        quotas: dict[str, QuotaCapacity] = {}
        requests = skipped = 0
        read = [0]
        marker = ""
        seen_markers: set[str] = set()
        for _ in range(MAX_QUOTA_PAGES):
            page, attempts = await self._page(marker, read)
            requests += attempts
            skipped += page.skipped
            for quota in page.quotas:
                key = quota.nickname  # the series are labelled by nickname alone
                if key in quotas:
                    skipped += 1
                else:
                    quotas[key] = quota
            self._check_bounds(len(quotas), read[0])
            if not page.marker:
                return QuotaListing(tuple(quotas.values()), requests, skipped)
            if page.marker in seen_markers:
                break
            seen_markers.add(page.marker)
            marker = page.marker
        raise ApiError("invalid_response", "ListQuotas markers do not come to an end")

    def _check_bounds(self, quotas: int, read: int) -> None:
        if quotas > self._max_quotas:
            raise ApiError(
                "too_many_groups",
                f"ListQuotas lists more than metrics.max_quotas_per_target ({self._max_quotas}) "
                "quotas: raise the limit, or switch the quota poll off (quota_poll.quotas: false)",
            )
        if read > MAX_LISTING_BYTES:
            raise ApiError(
                "too_many_groups",
                f"ListQuotas answers passed {MAX_LISTING_BYTES // (1024 * 1024)} MiB in one walk",
            )

    async def usage(
        self,
        level1: str,
        sub_quota: str | None,
        now: float,
        allowance: RetryAllowance | None = None,
    ) -> tuple[QuotaUsage, int]:
        """The latest usage points of ``level1`` (or of its sub-quota) asked at ``now``, and the
        attempts; retried within ``allowance`` (the round's), if given."""
        return await self._get(
            usage_path(level1),
            USAGE_ACTION,
            usage_query(now, sub_quota),
            lambda answer: parse_usage(answer.status, answer.body, now, answer.retry_after),
            allowance,
        )
