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
group, at 0, so ``rate()`` sees their first increase. Which groups have series of their own is
``polling.derive.counter_fold``'s policy (bounded in quotas and projects, dropped after
``metrics.counter_retention`` without a job, re-chosen on that slow schedule), so sums over
projects and quotas stay exact. A job counted finished and seen running again is counted in
``maxcompute_exporter_reappeared_jobs_total``, neither started nor finished again.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Target
from exporter.metrics.families import target_label_values
from exporter.polling.derive.aggregation import GroupKey
from exporter.polling.derive.counter_fold import DEFAULT_FOLD_LIMITS, CounterFold, FoldLimits
from exporter.polling.derive.job_changes import JobChanges, JobTracker, SeenJobs, UnseenJobs

# The bucket bounds of the queue-wait and of the run-time histograms.
Bounds = tuple[tuple[float, ...], tuple[float, ...]]


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


class TargetCounts:
    """One target's counters and histograms, keyed by the series ``fold`` names."""

    __slots__ = ("finished", "fold", "queue_wait", "reappeared", "run_time", "started")

    def __init__(self, fold: CounterFold) -> None:
        self.fold = fold
        self.started: dict[GroupKey, int] = {}
        self.finished: dict[GroupKey, int] = {}
        self.queue_wait: dict[str, BucketCounts] = {}
        self.run_time: dict[str, BucketCounts] = {}
        self.reappeared = 0

    def count(
        self, now: int, present: set[GroupKey], changes: JobChanges | None, bounds: Bounds
    ) -> None:
        """One good poll: route its changes through the fold, count them, keep its series."""
        started, finished = changes.started if changes else (), changes.finished if changes else ()
        counts: Counter[GroupKey] = Counter(GroupKey(j.quota, j.project) for j in started)
        counts.update(GroupKey(f.job.quota, f.job.project) for f in finished)
        fold = self.fold.round(now, present, counts)
        for job in started:
            series = fold.routes[GroupKey(job.quota, job.project)]
            self.started[series] = self.started.get(series, 0) + 1
            self._histogram(self.queue_wait, series.quota, bounds[0]).observe(job.queue_seconds)
        for done in finished:
            series = fold.routes[GroupKey(done.job.quota, done.job.project)]
            self.finished[series] = self.finished.get(series, 0) + 1
            self._histogram(self.run_time, series.quota, bounds[1]).observe(done.run_seconds)
        self.reappeared += len(changes.reappeared) if changes else 0
        # Series the fold dropped go; those it made exist at 0.
        self.started = {key: self.started.get(key, 0) for key in fold.series}
        self.finished = {key: self.finished.get(key, 0) for key in fold.series}
        for histograms, quota_bounds in ((self.queue_wait, bounds[0]), (self.run_time, bounds[1])):
            for quota in histograms.keys() - fold.quotas:
                del histograms[quota]
            for quota in fold.quotas:
                self._histogram(histograms, quota, quota_bounds)

    @staticmethod
    def _histogram(
        histograms: dict[str, BucketCounts], quota: str, bounds: tuple[float, ...]
    ) -> BucketCounts:
        counts = histograms.get(quota)
        if counts is None:
            counts = histograms[quota] = BucketCounts(bounds)
        return counts


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
        limits: FoldLimits = DEFAULT_FOLD_LIMITS,
    ) -> None:
        self._label_names = label_names
        self._limits = limits
        self._interval = interval
        self._bounds: Bounds = (queue_wait_buckets, run_time_buckets)
        # Handed on by a reload, so unchanged targets are not baselines again.
        self._tracker = tracker if tracker is not None else JobTracker()
        self._targets: set[Target] = set()
        self._lock = threading.Lock()
        # Per target (its label values), its counters and the policy naming their series.
        self._counts: dict[tuple[str, ...], TargetCounts] = {}

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
        present = {(job.quota, job.project) for job in seen.jobs.values()}
        # After a reload, the last poll (made before it) has groups these counters have not
        # seen yet: they exist at 0 before their finishes are counted.
        if target not in self._targets and last is not None:
            present |= {(job.quota, job.project) for job in last.jobs.values()}
        self._targets.add(target)
        with self._lock:
            counts = self._counts.get(values)
            if counts is None:
                counts = self._counts[values] = TargetCounts(self._limits.fold())
            groups = {GroupKey(quota, project) for quota, project in present}
            counts.count(window.end, groups, changes, self._bounds)

    def retain(self, targets: Iterable[Target]) -> None:
        """Forget the series of every target but ``targets``: a reload hands these counters
        on, so the targets it leaves unchanged keep counting where they were."""
        keep = set(targets)
        kept_values = {tuple(target_label_values(t, self._label_names)) for t in keep}
        with self._lock:
            self._targets &= keep
            self._counts = {v: c for v, c in self._counts.items() if v in kept_values}

    def _families(self) -> tuple[Metric, Metric, Metric, Metric, Metric]:
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
            CounterMetricFamily(
                "maxcompute_exporter_reappeared_jobs",
                "Jobs counted finished that a later good poll saw running again (an answer "
                "that left them out): not counted started, nor finished a second time.",
                labels=["region", *self._label_names],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        started, finished, queue_wait, run_time, reappeared = families = self._families()
        with self._lock:
            for values, counts in sorted(self._counts.items()):
                for key, count in sorted(counts.started.items()):
                    started.add_metric([*values, key.quota, key.project], count)
                for key, count in sorted(counts.finished.items()):
                    finished.add_metric([*values, key.quota, key.project], count)
                for histograms, family in (
                    (counts.queue_wait, queue_wait),
                    (counts.run_time, run_time),
                ):
                    for quota, buckets in sorted(histograms.items()):
                        family.add_metric([*values, quota], buckets.buckets(), buckets.total)
                reappeared.add_metric(list(values), counts.reappeared)
        return iter(families)
