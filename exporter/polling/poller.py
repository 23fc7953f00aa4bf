"""One poll of one target: read the window, aggregate, publish a snapshot or a failure.

``poll()`` is the one place where a poll's outcome is decided: whatever happens inside it, the
result is either a published snapshot or a counted failure with a fixed ``reason``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from exporter.api.client import RunningJobsClient
from exporter.api.errors import REASONS, ApiError
from exporter.config import PollSettings, Target
from exporter.metrics.collector import ExporterMetrics, target_label_values
from exporter.polling.aggregation import AggregateResult, aggregate
from exporter.polling.slices import TimeSlice, arrival_rate, plan_from_seen, slide_plan
from exporter.polling.snapshot import PollFailure, Snapshot, SnapshotStore
from exporter.polling.window_read import WindowRead, WindowReader

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.poller")


def poll_window(now: float, window: float) -> TimeSlice:
    """The closed submission-time interval [from, to] of a poll at ``now``, in Unix seconds."""
    end = int(now)
    return TimeSlice(end - int(window), end)


def request_cap(settings: PollSettings) -> int:
    """The most requests one poll may start: what its deadline allows at the rate ceiling."""
    return max(1, math.ceil(settings.effective_deadline * settings.rate_limit))


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How the next poll cuts its window: last poll's slices, and how fast jobs arrived."""

    slices: tuple[TimeSlice, ...]
    head_jobs_per_second: float

    @classmethod
    def after(cls, read: WindowRead) -> ReadPlan:
        submitted = [job.submitted_at for job in read.jobs()]
        slices = plan_from_seen(submitted, read.window, read.moving)
        return cls(tuple(slices), arrival_rate(submitted, read.window.end))

    def for_window(self, window: TimeSlice) -> list[TimeSlice]:
        return slide_plan(self.slices, window, self.head_jobs_per_second)


class TargetPoller:
    """Polls one target; owns its HTTP client and read plan. ``poll()`` never raises."""

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
        self._request_rate = metrics.request_rate.labels(*labels)
        self._last_requests = metrics.last_poll_requests.labels(*labels)
        self._rereads = metrics.slice_rereads.labels(*labels)
        self._client = RunningJobsClient(target, settings, on_request=self._api_requests)
        self._request_rate.set(self._client.rate.rate)
        self._plan: ReadPlan | None = None
        self._reader: WindowReader | None = None
        self._last_error: tuple | None = None
        self._warned_edge = False

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _read(self) -> WindowRead:
        window = poll_window(self._clock(), self._settings.window)
        plan = self._plan.for_window(window) if self._plan else [window]
        self._reader = WindowReader(
            self._client.fetch_page_with_retries,
            concurrency=self._settings.page_concurrency,
            request_cap=request_cap(self._settings),
        )
        return await self._reader.read(window, plan)

    async def poll(self) -> bool:
        """Run one poll; True if it succeeded and its snapshot is now published."""
        started = time.monotonic()
        deadline = self._settings.effective_deadline
        try:
            async with asyncio.timeout(deadline):
                read = await self._read()
            result = aggregate(read.jobs(), top_jobs=self._top_jobs)
        except ApiError as error:
            return self._failed(error, started)
        except TimeoutError:
            return self._failed(
                ApiError("deadline", f"poll took longer than its deadline of {deadline:g}s"),
                started,
            )
        except Exception as error:  # any other failure is a failed poll too, never an escape
            log.debug("poll failed inside the exporter", exc_info=True)
            return self._failed(
                ApiError("internal", f"unexpected {type(error).__name__} while polling"), started
            )
        self._succeeded(read, result, started)
        return True

    def _account(self, started: float) -> None:
        """What every poll, good or failed, reports: duration, requests, rate."""
        self._duration.observe(time.monotonic() - started)
        reader = self._reader
        if reader is not None:
            self._last_requests.set(reader.requests)
            self._rereads.inc(reader.rereads)
        self._request_rate.set(self._client.rate.rate)

    def _failed(self, error: ApiError, started: float) -> bool:
        self._account(started)
        self._poll_errors[error.reason].inc()
        self._store.publish_failure(
            self.target, PollFailure(error.reason, str(error), self._clock())
        )
        # Logged at warning once per change of error (a refused connection after a DNS failure
        # is a change), so a long outage does not flood the log.
        signature = (error.reason, error.status, error.error_code, error.args[0])
        level = logging.WARNING if signature != self._last_error else logging.DEBUG
        log.log(level, "poll failed", extra={"target": self.target.name, "error": str(error)})
        self._last_error = signature
        return False

    def _succeeded(self, read: WindowRead, result: AggregateResult, started: float) -> None:
        self._invalid_jobs.inc(read.invalid)
        self._out_of_range.inc(result.progress_out_of_range)
        snapshot = Snapshot(
            result.groups, result.jobs, completed_at=self._clock(), top_jobs=result.top_jobs
        )
        self._store.publish_success(self.target, snapshot)
        self._plan = ReadPlan.after(read)
        self._account(started)
        if self._last_error is not None:
            log.info("poll recovered", extra={"target": self.target.name})
            self._last_error = None
        self._warn_near_edge(read.window, result)
        log.debug(
            "poll done",
            extra={
                "target": self.target.name,
                "jobs": result.jobs,
                "groups": len(result.groups),
                "slices": len(read.slices),
                "requests": read.requests,
                "rereads": read.rereads,
                "invalid": read.invalid,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def _warn_near_edge(self, window: TimeSlice, result: AggregateResult) -> None:
        """Warn (once per episode) when running jobs were submitted near the window's start."""
        edge = window.start + self._settings.window / 10
        oldest = result.oldest_submission_seconds
        near_edge = oldest is not None and oldest <= edge
        if near_edge and not self._warned_edge:
            log.warning(
                "a running job was submitted near the start of the window; jobs submitted "
                "before it are invisible: consider a longer poll.window",
                extra={"target": self.target.name, "window_start": window.start},
            )
        self._warned_edge = near_edge
