"""Jobs over time: what started and finished between good polls, as counters and histograms.

Fed by the pollers' observer after each good poll is published (``poll_published``); the
comparison itself is ``polling.job_changes``. For example::

    # HELP maxcompute_jobs_started_total Jobs seen running that the last good poll did not see ...
    # TYPE maxcompute_jobs_started_total counter
    maxcompute_jobs_started_total{project="etl",quota="etl_quota",region="cn-hangzhou"} 42.0
    # TYPE maxcompute_job_queue_wait_seconds histogram
    maxcompute_job_queue_wait_seconds_bucket{le="60.0",quota="etl_quota",region="cn-hangzhou"} 40.0
    ...
    maxcompute_job_queue_wait_seconds_count{quota="etl_quota",region="cn-hangzhou"} 42.0
    maxcompute_job_queue_wait_seconds_sum{quota="etl_quota",region="cn-hangzhou"} 1830.0

Counters per (quota, project) and histograms per quota exist from the first poll that sees the
group, at 0, so ``rate()`` sees their first increase. They are never dropped: a counter stays.
Per target and quota, the first ``max_projects`` projects seen have counters of their own; the
projects seen after them count under ``project="__other__"``. Unlike the gauges' fold (the
projects with the most CUs now), the named set never changes, so no counter moves between
series and ``rate()`` and sums over projects stay exact.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Target
from exporter.metrics.families import target_label_values
from exporter.polling.derive.job_changes import (
    JobChanges,
    JobTracker,
    SeenJobs,
    TrackedJob,
    UnseenJobs,
)
from exporter.polling.derive.project_fold import OTHER_PROJECT


class BucketCounts:
    """One histogram's state: a count per bucket (the last is +Inf), the count and the sum."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # le is inclusive: an observation equal to a bound is in that bound's bucket.
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (``le``, count) pairs as the exposition writes them, ``+Inf`` last."""
        pairs, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            pairs.append((floatToGoString(bound), float(running)))
        return pairs


class JobChangeMetrics(Collector):
    """Tracks each target's last good poll and counts what changed at the next one.

    Counted after a poll is published, so its series are rendered per scrape with the
    exporter's own metrics, never cached with a snapshot's.
    """

    def __init__(
        self,
        label_names: tuple[str, ...],
        interval: float,
        queue_wait_buckets: tuple[float, ...],
        run_time_buckets: tuple[float, ...],
        tracker: JobTracker | None = None,
        max_projects: int = 500,
    ) -> None:
        self._label_names = label_names
        self._max_projects = max_projects
        # Per target and quota, the projects that have counters of their own.
        self._named: dict[tuple[str, ...], set[str]] = {}
        self._interval = interval
        self._queue_bounds = queue_wait_buckets
        self._run_bounds = run_time_buckets
        # Handed on by a reload, so unchanged targets are not baselines again.
        self._tracker = tracker if tracker is not None else JobTracker()
        self._targets: set[Target] = set()
        self._lock = threading.Lock()
        self._started: dict[tuple[str, ...], int] = {}
        self._finished: dict[tuple[str, ...], int] = {}
        self._queue_wait: dict[tuple[str, ...], BucketCounts] = {}
        self._run_time: dict[tuple[str, ...], BucketCounts] = {}

    @property
    def tracked_jobs(self) -> int:
        """Jobs remembered between polls, over all targets."""
        return self._tracker.tracked()

    def poll_published(
        self,
        target: Target,
        window: TimeSlice,
        jobs: Iterable[RunningJob],
        unseen: tuple[UnseenJobs, ...] = (),
    ) -> None:
        """A good poll of ``target``: compare it with the last one and count the changes."""
        last = self._tracker.last(target)
        seen = SeenJobs.of(window, jobs, last.jobs if last is not None else None, unseen)
        changes = self._tracker.observe(target, seen)
        values = tuple(target_label_values(target, self._label_names))
        # A group's first job is in the baseline or among the started ones; after a reload the
        # last poll (made before it) has groups these counters have not seen yet.
        new_jobs = list(seen.jobs.values() if changes is None else changes.started)
        if target not in self._targets and last is not None:
            new_jobs += last.jobs.values()
        self._targets.add(target)
        with self._lock:
            groups = {self._group(values, job) for job in new_jobs}
            self._create_children(values, groups)
            if changes is not None:
                self._count(values, changes)

    def _group(self, values: tuple[str, ...], job: TrackedJob) -> tuple[str, str]:
        """The (quota, project) a job's start or finish is counted under: its own, or
        ``__other__`` once its quota has ``max_projects`` projects with counters of their own."""
        named = self._named.setdefault((*values, job.quota), set())
        if job.project not in named:
            if job.project == OTHER_PROJECT or len(named) >= self._max_projects:
                return job.quota, OTHER_PROJECT
            named.add(job.project)
        return job.quota, job.project

    def _create_children(self, values: tuple[str, ...], groups: set[tuple[str, str]]) -> None:
        for quota, project in groups:
            self._started.setdefault((*values, quota, project), 0)
            self._finished.setdefault((*values, quota, project), 0)
            if (*values, quota) not in self._queue_wait:
                self._queue_wait[(*values, quota)] = BucketCounts(self._queue_bounds)
                self._run_time[(*values, quota)] = BucketCounts(self._run_bounds)

    def _count(self, values: tuple[str, ...], changes: JobChanges) -> None:
        # Every job's group had its children made when a poll first saw it.
        for job in changes.started:
            self._started[(*values, *self._group(values, job))] += 1
            self._queue_wait[(*values, job.quota)].observe(job.queue_seconds)
        for finished in changes.finished:
            self._finished[(*values, *self._group(values, finished.job))] += 1
            self._run_time[(*values, finished.job.quota)].observe(finished.run_seconds)

    def _families(self) -> tuple[Metric, Metric, Metric, Metric]:
        group_labels = ["region", *self._label_names, "quota", "project"]
        quota_labels = ["region", *self._label_names, "quota"]
        between = f"between two good polls of GetRunningJobs (every {self._interval:g}s)"
        return (
            CounterMetricFamily(
                "maxcompute_jobs_started_total",
                f"Jobs seen running that the last good poll did not see, {between}; jobs that "
                "start and finish between two polls are never seen.",
                labels=group_labels,
            ),
            CounterMetricFamily(
                "maxcompute_jobs_finished_total",
                f"Jobs no longer running that the last good poll saw, {between}; jobs that "
                "slid out of poll.window are not counted.",
                labels=group_labels,
            ),
            HistogramMetricFamily(
                "maxcompute_job_queue_wait_seconds",
                "How long jobs waited for CUs, runningAtTime - submittedAtTime, observed once "
                "when a job is first seen running.",
                labels=quota_labels,
            ),
            HistogramMetricFamily(
                "maxcompute_job_run_seconds",
                "How long finished jobs ran, from runningAtTime to the last poll that saw them "
                "running: a lower bound, short by at most the time between two polls "
                f"(one poll.interval, {self._interval:g}s, while polls succeed).",
                labels=quota_labels,
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        started, finished, queue_wait, run_time = families = self._families()
        with self._lock:
            for key, count in sorted(self._started.items()):
                started.add_metric(list(key), count)
            for key, count in sorted(self._finished.items()):
                finished.add_metric(list(key), count)
            for histograms, family in ((self._queue_wait, queue_wait), (self._run_time, run_time)):
                for key, counts in sorted(histograms.items()):
                    family.add_metric(list(key), counts.buckets(), counts.total)
        return iter(families)
