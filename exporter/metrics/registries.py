"""The exporter's metric registries, assembled: job series, self-metrics, process metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from exporter.config import PollSettings, Target
from exporter.metrics.collectors import JobMetricsCollector, TargetStatusCollector
from exporter.metrics.job_view import TopJobsCollector
from exporter.metrics.poll_metrics import PollMetrics
from exporter.metrics.series_cost import SeriesCostCollector
from exporter.metrics.staleness import Staleness
from exporter.polling.snapshot import SnapshotStore


class ExporterMetrics:
    """Assembles the exporter's metrics on registries of their own (no module globals).

    ``job_registry`` holds the job series (rendered once per published poll), ``self_registry``
    the exporter's own; ``polls`` is the observer the pollers report to.
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
        poll_for: Callable[[Target], PollSettings] | None = None,
    ) -> None:
        # Targets with their own targets[].poll: their interval and staleness limit.
        own = {t: poll_for(t) for t in targets} if poll_for is not None else {}
        intervals = {target: poll.interval for target, poll in own.items()}
        limits = {target: poll.effective_max_staleness for target, poll in own.items()}
        self.staleness = Staleness(max_staleness, clock, limits)
        self.job_registry = CollectorRegistry(auto_describe=True)
        # The job collectors, in exposition order: the renderer renders them a target at a time.
        self.job_collectors: tuple[JobMetricsCollector | TopJobsCollector, ...] = (
            JobMetricsCollector(
                store, label_names, interval, self.staleness, set(intervals.values())
            ),
        )
        if top_jobs > 0:  # off by default: its series grow with the number of targets
            self.job_collectors += (TopJobsCollector(store, label_names, top_jobs, self.staleness),)
        for collector in self.job_collectors:
            self.job_registry.register(collector)
        self.self_registry = CollectorRegistry(auto_describe=True)
        self.self_registry.register(
            TargetStatusCollector(
                store, label_names, interval, max_staleness, intervals=intervals, limits=limits
            )
        )
        self.self_registry.register(SeriesCostCollector(store, label_names, self.staleness))
        self.polls = PollMetrics(self.self_registry, targets, label_names)
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.self_registry.register(collector)
