"""One poll of one target: fetch every page, aggregate, publish a snapshot or a failure."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from exporter.aggregation import AggregateResult, JobAggregator
from exporter.client import PAGE_SIZE, REASONS, ApiError, FetchResult, RunningJobsClient
from exporter.collector import ExporterMetrics, target_label_values
from exporter.config import PollSettings, Target
from exporter.snapshot import PollFailure, Snapshot, SnapshotStore

log = logging.getLogger(__name__)

# A window whose pages disagree (the list moved under the read) is read this many times at most.
CONSISTENT_READ_ATTEMPTS = 2


def poll_window(now: float, window: float) -> tuple[int, int]:
    """The closed submission-time interval [from, to] of a poll at ``now``, in Unix seconds."""
    end = int(now)
    return end - int(window), end


def min_poll_seconds(total_count: int, rate_limit: float) -> float:
    """The least time a poll of ``total_count`` jobs can take at ``rate_limit`` requests/s."""
    return max(1, math.ceil(total_count / PAGE_SIZE)) / rate_limit


class TargetPoller:
    """Polls one target; owns its HTTP client. ``poll()`` never raises for API trouble."""

    def __init__(
        self,
        target: Target,
        settings: PollSettings,
        store: SnapshotStore,
        metrics: ExporterMetrics,
        *,
        clock: Callable[[], float] = time.time,
        top_jobs: int = 0,
    ) -> None:
        self.target = target
        self._top_jobs = top_jobs
        self._settings = settings
        self._store = store
        self._clock = clock
        labels = target_label_values(target, metrics.label_names)
        self._api_requests = lambda code: metrics.api_requests.labels(*labels, code).inc()
        self._invalid_jobs = metrics.invalid_jobs.labels(*labels)
        self._out_of_range = metrics.progress_out_of_range.labels(*labels)
        self._poll_errors = {
            reason: metrics.poll_errors.labels(*labels, reason) for reason in REASONS
        }
        self._duration = metrics.poll_duration.labels(*labels)
        self._client = RunningJobsClient(target, settings, on_request=self._api_requests)
        self._last_error: tuple | None = None
        self._warned_edge = False
        self._warned_rate = False

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _read_consistently(self) -> tuple[FetchResult, AggregateResult, int]:
        """Read the window; if its pages disagree, read it once more from scratch."""
        for attempt in range(CONSISTENT_READ_ATTEMPTS):
            window_start, window_end = poll_window(self._clock(), self._settings.window)
            aggregator = JobAggregator(top_jobs=self._top_jobs)
            try:
                fetched = await self._client.fetch_all(window_start, window_end, aggregator.add)
            except ApiError as error:
                if error.reason != "inconsistent" or attempt == CONSISTENT_READ_ATTEMPTS - 1:
                    raise
                log.debug("pages disagreed; reading again", extra={"target": self.target.name})
                continue
            return fetched, aggregator.result(), window_start
        raise AssertionError("unreachable")

    def _check_rate_limit_fits(self) -> None:
        """Warn (once) when the rate limit alone makes a poll take most of its deadline."""
        total = self._client.last_total_count
        if total is None:
            return
        needed = min_poll_seconds(total, self._settings.rate_limit)
        too_slow = needed > 0.8 * self._settings.effective_deadline
        if too_slow and not self._warned_rate:
            log.warning(
                "at poll.rate_limit a poll of this many jobs needs most of its deadline: "
                "raise poll.rate_limit (if the service allows) or poll.interval",
                extra={
                    "target": self.target.name,
                    "jobs": total,
                    "seconds_needed": round(needed, 1),
                    "deadline_seconds": self._settings.effective_deadline,
                },
            )
        self._warned_rate = too_slow

    async def poll(self) -> bool:
        """Run one poll; True if it succeeded and its snapshot is now published."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.effective_deadline):
                fetched, result, window_start = await self._read_consistently()
        except (ApiError, TimeoutError) as caught:
            error = (
                caught
                if isinstance(caught, ApiError)
                else ApiError(
                    "deadline",
                    f"poll took longer than its deadline of {self._settings.effective_deadline:g}s",
                )
            )
            self._duration.observe(time.monotonic() - started)
            self._poll_errors[error.reason].inc()
            self._store.publish_failure(
                self.target, PollFailure(error.reason, str(error), self._clock())
            )
            # Logged once per change of error, so a long outage does not flood the log.
            signature = (error.reason, error.status, error.error_code)
            level = logging.WARNING if signature != self._last_error else logging.DEBUG
            log.log(level, "poll failed", extra={"target": self.target.name, "error": str(error)})
            self._last_error = signature
            self._check_rate_limit_fits()
            return False
        self._invalid_jobs.inc(fetched.invalid)
        self._out_of_range.inc(result.progress_out_of_range)
        completed = self._clock()
        self._store.publish_success(
            self.target,
            Snapshot(result.groups, result.jobs, completed_at=completed, top_jobs=result.top_jobs),
        )
        self._duration.observe(time.monotonic() - started)
        if self._last_error is not None:
            log.info("poll recovered", extra={"target": self.target.name})
            self._last_error = None
        self._check_rate_limit_fits()
        edge = window_start + self._settings.window / 10
        near_edge = (
            result.oldest_submission_seconds is not None
            and result.oldest_submission_seconds <= edge
        )
        if near_edge and not self._warned_edge:
            log.warning(
                "a running job was submitted near the start of the window; jobs submitted "
                "before it are invisible: consider a longer poll.window",
                extra={"target": self.target.name, "window_start": window_start},
            )
        self._warned_edge = near_edge
        log.debug(
            "poll done",
            extra={
                "target": self.target.name,
                "jobs": result.jobs,
                "duplicates": result.duplicates,
                "groups": len(result.groups),
                "pages": fetched.pages,
                "invalid": fetched.invalid,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return True
