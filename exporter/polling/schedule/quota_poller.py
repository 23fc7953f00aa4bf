"""One target's quota poll: ListQuotas and GetQuotaUsage, each deciding its own outcome.

Beside the running-jobs poll, on its own schedule: ``poll_quotas()`` publishes every quota's
capacity, plan and parent; ``poll_usage()`` asks the usage of every quota the last good listing
named. Whatever happens inside either, the result is a published part or a counted failure with a
fixed ``reason``; it never touches the running-jobs snapshot. Each operation's requests go
through the target's client on the operation's own budget (requests in flight, learned rate),
so a hung or throttled quota API cannot hold back GetRunningJobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from exporter.api.errors import ApiError
from exporter.api.transport.client import RunningJobsClient
from exporter.api.transport.quota_client import QuotaClient
from exporter.api.wire.quota_usage import USAGE_ACTION, QuotaUsage
from exporter.api.wire.quotas import LIST_QUOTAS_ACTION, QUOTAS_PER_PAGE, QuotaCapacity
from exporter.config import QuotaPollSettings, Target
from exporter.polling.derive.usage_round import usage_round
from exporter.polling.publish.quota_snapshot import OPERATIONS, QuotaStore
from exporter.polling.publish.snapshot import PollFailure
from exporter.polling.schedule.episode import Episode

# The logger's name is part of every log line (logger=...).
log = logging.getLogger("exporter.quota_poller")


class QuotaPollObserver(Protocol):
    """Told what a quota poll does; the metrics implement it."""

    def quota_request_sent(self, target: Target, operation: str, code: str) -> None:
        """A request of ``operation`` ended: HTTP status, ``timeout`` or ``connection_error``."""

    def quota_poll_ended(
        self, target: Target, operation: str, failure: str | None, skipped: int, seconds: float
    ) -> None:
        """A part's poll ended: its failure's reason (None if good) and the values skipped."""


class QuotaPoller:
    """Decides one target's quota-poll outcomes over the target's signed client. Never raises."""

    def __init__(
        self,
        target: Target,
        client: RunningJobsClient,
        settings: QuotaPollSettings,
        store: QuotaStore,
        observer: QuotaPollObserver,
        *,
        clock: Callable[[], float] = time.time,
        per_page: int = QUOTAS_PER_PAGE,
        max_quotas: int = 100,
    ) -> None:
        self.target = target
        self._client = client
        self.settings = settings
        self._store = store
        self._observer = observer
        self._clock = clock
        self._api = QuotaClient(
            client,
            lambda op, code: observer.quota_request_sent(target, op, code),
            per_page=per_page,
            max_quotas=max_quotas,
        )
        self._failing = {operation: Episode() for operation in OPERATIONS}
        # Set when the first ListQuotas poll has ended: the first usage poll waits for it.
        self.listed = asyncio.Event()

    async def poll_quotas(self) -> bool:
        """One walk of ListQuotas; True if its listing is now published."""
        started = time.monotonic()
        self._client.budget(LIST_QUOTAS_ACTION).last_error = None
        try:
            async with asyncio.timeout(self.settings.quotas_interval * 0.9):
                listing = await self._api.list_quotas()
        except Exception as error:  # every failure is a counted, failed poll
            self._failed(LIST_QUOTAS_ACTION, error, started)
            return False
        finally:
            self.listed.set()
        self._store.publish_quotas(self.target, listing.quotas, self._clock())
        self._succeeded(LIST_QUOTAS_ACTION, listing.skipped, started)
        return True

    def _asked(self) -> list[tuple[str, str | None, str]]:
        """(level-1 nickname, sub-quota or None, the quota's own nickname) of every quota."""
        quotas: tuple[QuotaCapacity, ...] = self._store.status(self.target).quotas
        return [
            (q.parent, q.nickname, q.nickname) if q.level == 2 else (q.nickname, None, q.nickname)
            for q in quotas
        ]

    async def poll_usage(self) -> bool:
        """The usage of every listed quota; True if all of it is now published."""
        deadline = self.settings.usage_interval * 0.9
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                await self.listed.wait()
        asked = self._asked()
        if not asked and self._store.status(self.target).part(LIST_QUOTAS_ACTION).up is not True:
            log.debug("no quota listing yet: usage not asked", extra={"target": self.target.name})
            return False
        started = time.monotonic()
        self._client.budget(USAGE_ACTION).last_error = None
        try:
            async with asyncio.timeout(deadline):
                answers = await self._read_usage(asked)
            previous = self._store.status(self.target).usage
            result = usage_round(answers, previous, self._clock())
        except Exception as error:  # every failure is a counted, failed poll
            self._failed(USAGE_ACTION, error, started)
            return False
        self._store.publish_usage(self.target, result.usage, self._clock())
        self._succeeded(USAGE_ACTION, result.skipped, started)
        if result.failed:
            log.debug(
                "usage of some quotas not read: their last points are kept while recent",
                extra={"target": self.target.name, "quotas": result.failed},
            )
        return True

    async def _read_usage(
        self, asked: list[tuple[str, str | None, str]]
    ) -> dict[str, QuotaUsage | ApiError]:
        """Every quota's usage, or the error that ended its request: each stands alone.

        Sent at once, paced by GetQuotaUsage's own budget (its in-flight limit and learned
        rate); the round's retries are bounded (``round_allowance``), so it sends at most
        ~1.1x as many requests as it asks quotas.
        """
        now = self._clock()
        allowance = self._client.budget(USAGE_ACTION).round_allowance(len(asked))

        async def one(level1: str, sub: str | None) -> QuotaUsage | ApiError:
            try:
                usage, _ = await self._api.usage(level1, sub, now, allowance)
            except ApiError as error:
                return error
            return usage

        async with asyncio.TaskGroup() as group:
            tasks = {own: group.create_task(one(level1, sub)) for level1, sub, own in asked}
        return {own: task.result() for own, task in tasks.items()}

    def _succeeded(self, operation: str, skipped: int, started: float) -> None:
        self._observer.quota_poll_ended(
            self.target, operation, None, skipped, time.monotonic() - started
        )
        if self._failing[operation].ends():
            log.info(f"{operation} poll recovered", extra={"target": self.target.name})

    def _failed(self, operation: str, error: BaseException, started: float) -> None:
        failure = as_api_error(operation, error, self._client.budget(operation).last_error)
        self._observer.quota_poll_ended(
            self.target, operation, failure.reason, 0, time.monotonic() - started
        )
        self._store.publish_failure(
            self.target, operation, PollFailure(failure.reason, str(failure), self._clock())
        )
        # Once per change of error: a missing RAM action is named once, not every minute.
        signature = (failure.reason, failure.status, failure.error_code, failure.args[0])
        level = logging.WARNING if self._failing[operation].begins(signature) else logging.DEBUG
        log.log(
            level,
            f"{operation} poll failed",
            extra={"target": self.target.name, "error": str(failure)},
        )


def as_api_error(
    operation: str, error: BaseException, last_error: ApiError | None = None
) -> ApiError:
    """The counted form of whatever ended a part's poll: one that ran out of time fails as the
    last error its requests met (``last_error``), ``deadline`` only if they met none."""
    if isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]  # the first request that failed fails the poll
    if isinstance(error, ApiError):
        return error
    if isinstance(error, TimeoutError) and last_error is not None:
        return ApiError(
            last_error.reason,
            f"{operation} poll ran out of 90% of its interval; its requests last failed: "
            f"{last_error}",
            status=last_error.status,
            error_code=last_error.error_code,
        )
    if isinstance(error, TimeoutError):
        return ApiError("deadline", f"{operation} poll took longer than 90% of its interval")
    log.debug("quota poll failed inside the exporter", exc_info=error)
    return ApiError("internal", f"unexpected {type(error).__name__} while polling {operation}")
