"""The exporter's metric registries, assembled: job series, self-metrics, process metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.api.wire.quota_usage import USAGE_ACTION
from exporter.api.wire.quotas import LIST_QUOTAS_ACTION
from exporter.config import PollSettings, QuotaPollSettings, Target
from exporter.config.model import DEFAULT_QUEUE_WAIT_BUCKETS, DEFAULT_RUN_TIME_BUCKETS
from exporter.metrics.collectors import JobMetricsCollector, TargetStatusCollector
from exporter.metrics.consumption import ConsumptionMetrics
from exporter.metrics.counter_chunks import RenderedCounters
from exporter.metrics.job_changes import JobChangeMetrics
from exporter.metrics.job_chunks import TargetFamilies
from exporter.metrics.job_view import TopJobsCollector
from exporter.metrics.poll_metrics import PollMetrics
from exporter.metrics.quota_metrics import QuotaCollector
from exporter.metrics.quota_poll_metrics import QuotaPollMetrics
from exporter.metrics.run_times import RunTimesCollector
from exporter.metrics.self_exposition import SelfRegistry
from exporter.metrics.series_cost import SeriesCostCollector
from exporter.metrics.staleness import Staleness
from exporter.polling.derive.consumption import ConsumptionTracker
from exporter.polling.derive.counter_fold import DEFAULT_FOLD_LIMITS, FoldLimits
from exporter.polling.derive.job_changes import JobTracker, UnseenJobs
from exporter.polling.publish.quota_snapshot import QuotaStore
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.observer import PollOutcome

QUOTA_POLL_OFF = QuotaPollSettings(quotas=False, usage=False)


@dataclass(frozen=True, slots=True)
class ConsumptionOptions:
    """The consumption counters' settings: the owner view and its cap; on a reload, the last
    exporter's tracker and (if its settings were the same) its counters."""

    owners: bool = False
    max_owners: int = 20
    tracker: ConsumptionTracker | None = None
    # The last exporter's counters, made with the same settings: they go on counting.
    carried: ConsumptionMetrics | None = None


class PollReports:
    """The observer the pollers report to: the self-metrics, then jobs over time (if on) and
    consumption."""

    def __init__(
        self,
        polls: PollMetrics,
        job_changes: JobChangeMetrics | None,
        consumption: ConsumptionMetrics | None = None,
    ) -> None:
        self.polls = polls
        self.job_changes = job_changes
        self.consumption = consumption

    def request_sent(self, target: Target, code: str) -> None:
        self.polls.request_sent(target, code)

    def rate_learned(self, target: Target, requests_per_second: float) -> None:
        self.polls.rate_learned(target, requests_per_second)

    def poll_ended(self, target: Target, outcome: PollOutcome) -> None:
        self.polls.poll_ended(target, outcome)
        if outcome.failure is not None and self.consumption is not None:
            self.consumption.poll_failed(target)

    def poll_published(
        self,
        target: Target,
        window: TimeSlice,
        jobs: Iterable[RunningJob],
        unseen: tuple[UnseenJobs, ...] = (),
    ) -> None:
        # The jobs are handed up as an iterator, read once: every step here gets the list.
        jobs = list(jobs)
        if self.job_changes is not None:
            self.job_changes.poll_published(target, window, jobs, unseen)
        if self.consumption is not None:
            self.consumption.poll_published(target, window, jobs)


class ExporterMetrics:
    """Assembles the exporter's metrics on registries of their own (no module globals).

    ``job_registry`` holds the job series (rendered once per published poll), ``counter_registry``
    the counters of jobs over time and consumption (``counter_collectors``, each target's
    rendered when its poll is published), ``self_registry`` the exporter's own; ``polls`` is
    the observer the pollers report to. ``top_jobs`` and
    ``job_changes`` add the per-job view and jobs over time (``metrics.*`` in the config);
    ``job_tracker`` is the last exporter's, on a reload, ``carried_job_changes`` its jobs over
    time if it had the same settings; ``counter_limits`` bound the counters' series
    (``polling.derive.counter_fold``); ``consumption`` holds the share-seconds counters' owner
    view and, on a reload, the last exporter's tracker and counters.
    """

    def __init__(
        self,
        store: SnapshotStore,
        targets: tuple[Target, ...],
        label_names: tuple[str, ...],
        interval: float,
        *,
        max_staleness: float = math.inf,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
        top_jobs: int = 0,
        job_changes: bool = True,
        queue_wait_buckets: tuple[float, ...] = DEFAULT_QUEUE_WAIT_BUCKETS,
        run_time_buckets: tuple[float, ...] = DEFAULT_RUN_TIME_BUCKETS,
        job_tracker: JobTracker | None = None,
        quota_store: QuotaStore | None = None,
        quota_poll: QuotaPollSettings = QUOTA_POLL_OFF,
        poll_for: Callable[[Target], PollSettings] | None = None,
        counter_limits: FoldLimits = DEFAULT_FOLD_LIMITS,
        carried_job_changes: JobChangeMetrics | None = None,
        consumption: ConsumptionOptions | None = None,
    ) -> None:
        # Targets with their own targets[].poll: their interval and staleness limit.
        own = {t: poll_for(t) for t in targets} if poll_for is not None else {}
        intervals = {target: poll.interval for target, poll in own.items()}
        limits = {target: poll.effective_max_staleness for target, poll in own.items()}
        self.staleness = Staleness(max_staleness, clock, limits)
        # The job collectors, in exposition order: the renderer renders them a target at a time.
        self.job_collectors = self._job_collectors(
            store, label_names, interval, top_jobs, set(intervals.values())
        )
        self.self_registry = SelfRegistry(auto_describe=True)
        self.counter_registry = CollectorRegistry(auto_describe=True)
        self.self_registry.register(
            TargetStatusCollector(
                store, label_names, interval, max_staleness, intervals=intervals, limits=limits
            )
        )
        self.self_registry.register(SeriesCostCollector(store, label_names, self.staleness))
        self.job_changes = self._job_changes(
            targets, label_names, interval, job_changes, queue_wait_buckets, run_time_buckets,
            job_tracker, counter_limits, carried_job_changes,
        )  # fmt: skip
        self._consumption(targets, label_names, interval, consumption, counter_limits)
        polls = PollMetrics(self.self_registry, targets, label_names)
        self.polls = PollReports(polls, self.job_changes, self.consumption)
        self.quota_polls = self._quota_metrics(targets, label_names, quota_store, quota_poll, clock)
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.self_registry.register(collector)

    def _job_collectors(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        interval: float,
        top_jobs: int,
        own_intervals: set[float],
    ) -> tuple[TargetFamilies, ...]:
        """The collectors of the snapshot's job series, each able to render a target alone,
        registered on ``job_registry``."""
        collectors: tuple[TargetFamilies, ...] = (
            JobMetricsCollector(store, label_names, interval, self.staleness, own_intervals),
        )
        if top_jobs > 0:  # off by default: its series grow with the number of targets
            collectors += (TopJobsCollector(store, label_names, top_jobs, self.staleness),)
        collectors += (RunTimesCollector(store, label_names, interval, self.staleness),)
        self.job_registry = CollectorRegistry(auto_describe=True)
        for collector in collectors:
            self.job_registry.register(collector)
        return collectors

    def _job_changes(
        self,
        targets: tuple[Target, ...],
        label_names: tuple[str, ...],
        interval: float,
        on: bool,
        queue_wait_buckets: tuple[float, ...],
        run_time_buckets: tuple[float, ...],
        job_tracker: JobTracker | None,
        limits: FoldLimits,
        carried: JobChangeMetrics | None,
    ) -> JobChangeMetrics | None:
        """Jobs over time, if on: counted after a poll is published, its series rendered then
        (on ``counter_registry``).

        ``carried``: the last exporter's, made with the same settings, on a reload: the
        targets it leaves unchanged keep their counters."""
        # The last good poll of each target, kept across reloads for the targets that stay.
        self.job_tracker = job_tracker if job_tracker is not None else JobTracker()
        self.job_tracker.retain(targets if on else ())
        if not on:
            return None
        if carried is not None:
            carried.retain(targets)
            self.counter_registry.register(carried)
            return carried
        changes = JobChangeMetrics(
            label_names,
            interval,
            queue_wait_buckets,
            run_time_buckets,
            self.job_tracker,
            limits,
        )
        self.counter_registry.register(changes)
        return changes

    def _consumption(
        self,
        targets: tuple[Target, ...],
        label_names: tuple[str, ...],
        interval: float,
        options: ConsumptionOptions | None,
        limits: FoldLimits,
    ) -> None:
        """``consumption``, the share-seconds counters: integrated after a poll is published,
        rendered then (on ``counter_registry``); and their ``consumption_tracker``."""
        options = options or ConsumptionOptions()
        # The last good poll of each target, kept across reloads for the targets that stay.
        self.consumption_tracker = options.tracker or ConsumptionTracker()
        self.consumption_tracker.retain(targets)
        if options.carried is not None:
            # The targets the reload leaves unchanged keep counting where they were.
            options.carried.retain(targets)
            self.consumption = options.carried
        else:
            self.consumption = ConsumptionMetrics(
                label_names,
                interval,
                self.consumption_tracker,
                limits=limits,
                owners=options.owners,
                max_owners=options.max_owners,
            )
        self.counter_registry.register(self.consumption)
        # Stitched into each scrape in this order, as ``counter_registry`` renders them.
        jobs_over_time = (self.job_changes,) if self.job_changes is not None else ()
        self.counter_collectors: tuple[RenderedCounters, ...] = (*jobs_over_time, self.consumption)

    def _quota_metrics(
        self,
        targets: tuple[Target, ...],
        label_names: tuple[str, ...],
        quota_store: QuotaStore | None,
        quota_poll: QuotaPollSettings,
        clock: Callable[[], float],
    ) -> QuotaPollMetrics:
        """The quota poll's health per part that is on, and its series if a store is given.

        The quota series are few (tens of quotas) and their age moves with the clock: they are
        rendered per scrape with the exporter's own.
        """
        parts = ((LIST_QUOTAS_ACTION, quota_poll.quotas), (USAGE_ACTION, quota_poll.usage))
        operations = [operation for operation, on in parts if on]
        if quota_store is not None and quota_poll.enabled:
            self.self_registry.register(QuotaCollector(quota_store, label_names, quota_poll, clock))
        return QuotaPollMetrics(self.self_registry, targets, label_names, operations)
