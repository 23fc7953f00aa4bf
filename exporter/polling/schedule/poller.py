"""One poll of one target: read the window, aggregate, publish a snapshot or a failure.

``poll()`` is the one place where a poll's outcome is decided: whatever happens inside it, the
result is either a published snapshot or a counted failure with a fixed ``reason``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.api.errors import ApiError
from exporter.api.transport.client import RunningJobsClient
from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import JobFilter
from exporter.api.wire.running_jobs import ACTION
from exporter.config import PollSettings, Target
from exporter.config.model import DEFAULT_RUN_TIME_BUCKETS
from exporter.polling.derive.aggregation import MAX_QUOTAS_PER_TARGET, AggregateResult, aggregate
from exporter.polling.derive.job_changes import UnseenJobs
from exporter.polling.derive.project_fold import fold_projects
from exporter.polling.derive.run_times import RunTimeFold
from exporter.polling.derive.start_times import started_by
from exporter.polling.publish.snapshot import PollFailure, Snapshot, SnapshotStore
from exporter.polling.read.burst_parts import Combination
from exporter.polling.read.slices import (
    MOVING_CAPACITY,
    TimeSlice,
    arrival_rate,
    plan_from_seen,
    slide_plan,
)
from exporter.polling.read.unseen_carry import carried_jobs, dense_jobs
from exporter.polling.read.window_read import WindowRead, WindowReader
from exporter.polling.schedule.episode import Episode
from exporter.polling.schedule.observer import PollObserver, PollOutcome

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
    """How the next poll cuts its window: last poll's slices, how fast jobs arrived, and the
    (quota, owner) of the jobs of each second too dense for one page."""

    slices: tuple[TimeSlice, ...]
    head_jobs_per_second: float
    dense: Mapping[int, Counter[Combination]] = field(default_factory=dict)

    @classmethod
    def after(cls, read: WindowRead) -> ReadPlan:
        submitted = [job.submitted_at for job in read.jobs()]
        slices = plan_from_seen(submitted, read.window, read.moving)
        return cls(tuple(slices), arrival_rate(submitted, read.window.end), dense_seconds(read))

    def for_window(self, window: TimeSlice) -> list[TimeSlice]:
        return slide_plan(self.slices, window, self.head_jobs_per_second)


def out_of_time(deadline: float, last_error: ApiError | None) -> ApiError:
    """What a poll that ran out of time failed of: the last error its requests met (503s
    retried until the deadline are a server error), ``deadline`` only if every request was
    answered (a healthy but slow read)."""
    if last_error is None:
        return ApiError("deadline", f"poll took longer than its deadline of {deadline:g}s")
    return ApiError(
        last_error.reason,
        f"poll ran out of its deadline of {deadline:g}s; its requests last failed: {last_error}",
        status=last_error.status,
        error_code=last_error.error_code,
    )


def dense_seconds(read: WindowRead) -> dict[int, Counter[Combination]]:
    """Per second of a slice too narrow to cut by time that held more jobs than a part of a
    page, its jobs by (quota, owner): the few jobs beside a burst in its two-second slice too,
    or the next cut leaves them out and must look for them in every page of the slice."""
    dense: dict[int, Counter[Combination]] = defaultdict(Counter)
    for piece in read.slices:
        if piece.piece.splittable or len(piece.jobs) <= MOVING_CAPACITY:
            continue
        for job in piece.jobs:
            dense[job.submitted_at][(job.quota, job.owner)] += 1
    return dict(dense)


class TargetPoller:
    """Decides one target's poll outcomes; owns its HTTP client and read plan. Never raises."""

    def __init__(
        self,
        target: Target,
        settings: PollSettings,
        store: SnapshotStore,
        observer: PollObserver,
        *,
        clock: Callable[[], float] = time.time,
        top_jobs: int = 0,
        run_time_buckets: tuple[float, ...] = DEFAULT_RUN_TIME_BUCKETS,
        max_projects_per_quota: int = 500,
        max_quotas: int = MAX_QUOTAS_PER_TARGET,
        carried: TargetPoller | None = None,
    ) -> None:
        """``carried``: the poller of the same target with the same settings before a reload;
        its client (learned rate, credentials, connections) and read plan go on here."""
        self.target = target
        self._top_jobs = top_jobs
        self._run_time_buckets = run_time_buckets
        self._max_projects = max_projects_per_quota
        self._max_quotas = max_quotas
        self._settings = settings
        self._store = store
        self._clock = clock
        self._observer = observer
        self._client = carried.client if carried else RunningJobsClient(target, settings)
        self._client.report_to(self._request_ended)
        self._requests = 0  # GetRunningJobs requests this poll sent, whatever their end
        observer.rate_learned(target, self._client.request_rate)
        self._plan: ReadPlan | None = carried._plan if carried else None
        self._reader: WindowReader | None = None
        # The last good read's dense jobs, for its unseen ones; a reload hands them on.
        self._dense_jobs: dict[str, RunningJob] = carried._dense_jobs if carried else {}
        # Warned about once per episode: a failure (per change of error), a window too short.
        self._failing = carried._failing if carried else Episode()
        self._near_edge = carried._near_edge if carried else Episode()

    def _request_ended(self, code: str) -> None:
        self._requests += 1
        self._observer.request_sent(self.target, code)

    @property
    def client(self) -> RunningJobsClient:
        """The target's one signed client; the quota poll sends its requests through it too."""
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _read(self) -> WindowRead:
        window = poll_window(self._clock(), self._settings.window)
        plan = self._plan.for_window(window) if self._plan else [window]
        self._reader = WindowReader(
            self._client.fetch_page_with_retries,
            concurrency=self._settings.page_concurrency,
            request_cap=request_cap(self._settings),
            seen=self._plan.dense if self._plan else None,
            allowed=JobFilter(tuple(self.target.quotas), tuple(self.target.owners)),
        )
        return await self._reader.read(window, plan)

    async def poll(self) -> bool:
        """Run one poll; True if it succeeded and its snapshot is now published."""
        started = time.monotonic()
        deadline = self._settings.effective_deadline
        self._reader = None  # a poll that fails before its read reports nothing of the last one
        self._requests = 0
        jobs_budget = self._client.budget(ACTION)
        jobs_budget.last_error = None
        try:
            async with asyncio.timeout(deadline):
                read = await self._read()
            result = aggregate(
                started_by(read.jobs(), read.window.end),
                top_jobs=self._top_jobs,
                run_times=RunTimeFold(self._run_time_buckets, read.window.end),
                max_quotas=self._max_quotas,
            )
        except ApiError as error:
            return self._failed(error, started)
        except TimeoutError:
            return self._failed(out_of_time(deadline, jobs_budget.last_error), started)
        except Exception as error:  # any other failure is a failed poll too, never an escape
            log.debug("poll failed inside the exporter", exc_info=True)
            return self._failed(
                ApiError("internal", f"unexpected {type(error).__name__} while polling"), started
            )
        self._succeeded(read, result, started)
        return True

    def _report(self, started: float, **outcome: str | int | None) -> None:
        """What every poll, good or failed, reports: duration, requests, rate, and ``outcome``."""
        reader = self._reader
        self._observer.poll_ended(
            self.target,
            PollOutcome(
                seconds=time.monotonic() - started,
                requests=self._requests,
                rereads=reader.rereads if reader is not None else 0,
                request_rate=self._client.request_rate,
                **outcome,
            ),
        )

    def _failed(self, error: ApiError, started: float) -> bool:
        self._report(started, failure=error.reason)
        if self._reader is not None and self._reader.pieces:
            # Where the jobs are is worth keeping even from a poll that did not finish: a first
            # poll too slow for its deadline makes the next one a planned (faster) read.
            # So is how each dense second splits by quota and owner: a first poll's samples.
            rate = self._plan.head_jobs_per_second if self._plan else 0.0
            dense = {**(self._plan.dense if self._plan else {}), **self._reader.learned}
            self._plan = ReadPlan(tuple(self._reader.pieces), rate, dense)
        self._store.publish_failure(
            self.target, PollFailure(error.reason, str(error), self._clock())
        )
        # Logged at warning once per change of error (a refused connection after a DNS failure
        # is a change), so a long outage does not flood the log.
        signature = (error.reason, error.status, error.error_code, error.args[0])
        level = logging.WARNING if self._failing.begins(signature) else logging.DEBUG
        log.log(level, "poll failed", extra={"target": self.target.name, "error": str(error)})
        return False

    def _succeeded(self, read: WindowRead, result: AggregateResult, started: float) -> None:
        self._report(
            started,
            invalid_jobs=read.invalid,
            progress_out_of_range=result.progress_out_of_range,
            approximate_jobs=read.approximate,
            approximate_parts=read.approximate_parts,
            unseen_jobs=read.unseen,
        )
        folded = fold_projects(result.groups, self._max_projects)
        snapshot = Snapshot(
            folded.groups,
            result.jobs,
            completed_at=self._clock(),
            top_jobs=result.top_jobs,
            run_times=result.run_times,
            folded_projects=folded.folded_projects,
        )
        self._store.publish_success(self.target, snapshot)
        self._derive(read)
        self._plan = ReadPlan.after(read)
        if self._failing.ends():
            log.info("poll recovered", extra={"target": self.target.name})
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
                "approximate": read.approximate,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def _derive(self, read: WindowRead) -> None:
        """Hand the published poll's jobs to the steps that compare successive polls, with the
        last poll's jobs its counts say are still there unseen (``unseen_carry``)."""
        shown = [*read.jobs(), *carried_jobs(self._dense_jobs, read)]
        self._dense_jobs = dense_jobs(shown, read)
        unseen = tuple(UnseenJobs(u.piece, u.part.quotas, u.unseen) for u in read.unsure)
        try:
            jobs = started_by(shown, read.window.end)
            self._observer.poll_published(self.target, read.window, jobs, unseen)
        except Exception:  # a defect there must not undo a published poll, nor escape
            log.error(
                "comparing the poll with the last one failed",
                exc_info=True,
                extra={"target": self.target.name},
            )

    def _warn_near_edge(self, window: TimeSlice, result: AggregateResult) -> None:
        """Warn (once per episode) when running jobs were submitted near the window's start."""
        edge = window.start + self._settings.window / 10
        oldest = result.oldest_submission_seconds
        if oldest is None or oldest > edge:
            self._near_edge.ends()
        elif self._near_edge.begins(True):
            log.warning(
                "a running job was submitted near the start of the window; jobs submitted "
                "before it are invisible: consider a longer poll.window",
                extra={"target": self.target.name, "window_start": window.start},
            )
