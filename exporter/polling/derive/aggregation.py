"""Pure arithmetic from running jobs to per-(quota, project) aggregates.

Jobs are folded in one at a time (``JobAggregator``) so a poll never holds every job in memory:
only one small accumulator per group, the set of instance ids already counted and, when the
per-job view is on, a bounded top N of jobs (``TopJobs``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import RunningJob
from exporter.polling.derive.run_times import RunTimeFold, RunTimes
from exporter.polling.derive.top_jobs import TopJobs

# Default of ``metrics.max_quotas_per_target``: distinct quotas one poll may hold.
MAX_QUOTAS_PER_TARGET = 100


@dataclass(frozen=True, slots=True, order=True)
class GroupKey:
    """The (quota, project) a group of jobs is counted under."""

    quota: str
    project: str


@dataclass(frozen=True, slots=True)
class GroupAggregate:
    """What ``/metrics`` shows for one (quota, project) group."""

    running_jobs: int
    cu_ratio: float
    memory_ratio: float
    progress_sum: float
    oldest_start_seconds: int
    max_queue_seconds: int
    zero_progress_jobs: int
    zero_progress_oldest_start_seconds: int | None


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """What one poll's jobs add up to: the groups, the job count, the top jobs."""

    groups: Mapping[GroupKey, GroupAggregate]
    jobs: int
    duplicates: int
    progress_out_of_range: int
    oldest_submission_seconds: int | None
    # The per-job view: the top N jobs by CU share and by run time (empty when it is off).
    top_jobs: tuple[RunningJob, ...] = ()
    # Per quota, how long its running jobs had run at the poll (empty without a fold).
    run_times: Mapping[str, RunTimes] = field(default_factory=dict)


def clamp_progress(progress: float) -> tuple[float, bool]:
    """Progress as a 0..1 ratio, and whether it had to be clamped."""
    if progress < 0.0:
        return 0.0, True
    if progress > 1.0:
        return 1.0, True
    return progress, False


class _Group:
    """Accumulates one group's sums and extremes while jobs are folded in."""

    __slots__ = (
        "count",
        "cu",
        "max_queue",
        "memory",
        "oldest_start",
        "progress_sum",
        "zero_count",
        "zero_oldest",
    )

    def __init__(self) -> None:
        self.count = 0
        self.cu = 0.0
        self.memory = 0.0
        self.progress_sum = 0.0
        self.oldest_start: int | None = None
        self.max_queue = 0
        self.zero_count = 0
        self.zero_oldest: int | None = None

    def freeze(self) -> GroupAggregate:
        assert self.oldest_start is not None
        return GroupAggregate(
            running_jobs=self.count,
            cu_ratio=self.cu,
            memory_ratio=self.memory,
            progress_sum=self.progress_sum,
            oldest_start_seconds=self.oldest_start,
            max_queue_seconds=self.max_queue,
            zero_progress_jobs=self.zero_count,
            zero_progress_oldest_start_seconds=self.zero_oldest,
        )


class JobAggregator:
    """Folds jobs into group accumulators, counting each ``instanceId`` once.

    ``top_jobs`` > 0 also keeps that many leading jobs by CU share and by run time;
    ``run_times`` also counts each quota's jobs by how long they have run. A job of a quota past
    the first ``max_quotas`` fails the poll as ``too_many_groups``: quotas are not folded (each
    is a capacity of its own), so their number is what bounds a target's series.
    """

    def __init__(
        self,
        *,
        top_jobs: int = 0,
        run_times: RunTimeFold | None = None,
        max_quotas: int = MAX_QUOTAS_PER_TARGET,
    ) -> None:
        self._top = TopJobs(top_jobs)
        self._run_times = run_times
        self._max_quotas = max_quotas
        self._quotas: set[str] = set()
        self._groups: dict[GroupKey, _Group] = {}
        self._seen: set[str] = set()
        self._duplicates = 0
        self._out_of_range = 0
        self._oldest_submission: int | None = None

    def add(self, job: RunningJob) -> None:
        # The list moves while it is paged: a job can show up on two pages.
        if job.instance_id in self._seen:
            self._duplicates += 1
            return
        if job.quota not in self._quotas:
            self._count_quota(job.quota)
        self._seen.add(job.instance_id)
        self._top.add(job)
        if self._run_times is not None:
            self._run_times.add(job)
        key = GroupKey(job.quota, job.project)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        progress, clamped = clamp_progress(job.progress)
        self._out_of_range += clamped
        group.count += 1
        group.cu += job.cu_snapshot
        group.memory += job.memory_snapshot
        group.progress_sum += progress
        if group.oldest_start is None or job.running_at < group.oldest_start:
            group.oldest_start = job.running_at
        group.max_queue = max(group.max_queue, job.running_at - job.submitted_at)
        if progress == 0.0:
            group.zero_count += 1
            if group.zero_oldest is None or job.running_at < group.zero_oldest:
                group.zero_oldest = job.running_at
        if self._oldest_submission is None or job.submitted_at < self._oldest_submission:
            self._oldest_submission = job.submitted_at

    def _count_quota(self, quota: str) -> None:
        if len(self._quotas) >= self._max_quotas:
            raise ApiError(
                "too_many_groups",
                f"the jobs name more than metrics.max_quotas_per_target ({self._max_quotas}) "
                "quotas: raise it, or list the quotas to poll in targets[].quotas",
            )
        self._quotas.add(quota)

    def result(self) -> AggregateResult:
        return AggregateResult(
            groups={key: group.freeze() for key, group in sorted(self._groups.items())},
            jobs=len(self._seen),
            duplicates=self._duplicates,
            progress_out_of_range=self._out_of_range,
            oldest_submission_seconds=self._oldest_submission,
            top_jobs=self._top.jobs(),
            run_times=self._run_times.result() if self._run_times is not None else {},
        )


def aggregate(
    jobs: Iterable[RunningJob],
    *,
    top_jobs: int = 0,
    run_times: RunTimeFold | None = None,
    max_quotas: int = MAX_QUOTAS_PER_TARGET,
) -> AggregateResult:
    """Aggregate ``jobs`` by (quota, project); a repeated ``instance_id`` counts once.

    Raises ``ApiError("too_many_groups")`` past ``max_quotas`` distinct quotas."""
    aggregator = JobAggregator(top_jobs=top_jobs, run_times=run_times, max_quotas=max_quotas)
    for job in jobs:
        aggregator.add(job)
    return aggregator.result()
