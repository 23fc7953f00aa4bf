"""The quota operations over the target's one signed client: ListQuotas walked, GetQuotaUsage.

Requests share the client's signer, credential, connections and learned rate, and are retried
as GetRunningJobs pages are. A permission error names the RAM action the policy lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from exporter.api.errors import ApiError
from exporter.api.transport.client import RawAnswer, RunningJobsClient
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
    ) -> None:
        self._client = client
        self._on_request = on_request
        self._per_page = per_page

    async def _get(
        self, path: str, action: str, query: dict[str, str], parse: Callable[[RawAnswer], T]
    ) -> tuple[T, int]:
        """One request parsed, paced and retried as a page is (throttling in the body too)."""

        def heard(code: str) -> None:
            self._on_request(action, code)

        async def once() -> T:
            return parse(await self._client.get(path, action, query, heard))

        try:
            return await self._client.call_with_retries(once)
        except ApiError as error:
            raise naming_ram_action(error, action) from None

    async def _page(self, marker: str) -> tuple[QuotaPage, int]:
        query = list_quotas_query(marker, self._per_page)
        return await self._get(
            QUOTAS_PATH,
            LIST_QUOTAS_ACTION,
            query,
            lambda answer: parse_quota_page(answer.status, answer.body, answer.retry_after),
        )

    async def list_quotas(self) -> QuotaListing:
        """Every page, marker after marker, until the marker comes back empty.

        A quota listed twice (the list moved between pages) is kept once and counted skipped.
        """
        quotas: dict[str, QuotaCapacity] = {}
        requests = skipped = 0
        marker = ""
        seen_markers: set[str] = set()
        for _ in range(MAX_QUOTA_PAGES):
            page, attempts = await self._page(marker)
            requests += attempts
            skipped += page.skipped
            for quota in page.quotas:
                key = quota.nickname  # the series are labelled by nickname alone
                if key in quotas:
                    skipped += 1
                else:
                    quotas[key] = quota
            if not page.marker:
                return QuotaListing(tuple(quotas.values()), requests, skipped)
            if page.marker in seen_markers:
                break
            seen_markers.add(page.marker)
            marker = page.marker
        raise ApiError("invalid_response", "ListQuotas markers do not come to an end")

    async def usage(self, level1: str, sub_quota: str | None, now: float) -> tuple[QuotaUsage, int]:
        """The latest usage points of ``level1`` (or of its sub-quota), and the attempts."""
        return await self._get(
            usage_path(level1),
            USAGE_ACTION,
            usage_query(now, sub_quota),
            lambda answer: parse_usage(answer.status, answer.body, answer.retry_after),
        )
