"""The exporter's metric registries, assembled: job series, self-metrics, process metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from exporter.api.quota_usage import USAGE_ACTION
from exporter.api.quotas import LIST_QUOTAS_ACTION
from exporter.config import QuotaPollSettings, Target
from exporter.metrics.collectors import JobMetricsCollector, TargetStatusCollector
from exporter.metrics.job_view import TopJobsCollector
from exporter.metrics.poll_metrics import PollMetrics
from exporter.metrics.quota_metrics import QuotaCollector
from exporter.metrics.quota_poll_metrics import QuotaPollMetrics
from exporter.metrics.staleness import Staleness
from exporter.polling.quota_snapshot import QuotaStore
from exporter.polling.snapshot import SnapshotStore

QUOTA_POLL_OFF = QuotaPollSettings(quotas=False, usage=False)


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
        quota_store: QuotaStore | None = None,
        quota_poll: QuotaPollSettings = QUOTA_POLL_OFF,
    ) -> None:
        self.staleness = Staleness(max_staleness, clock)
        self.job_registry = CollectorRegistry(auto_describe=True)
        self.job_registry.register(
            JobMetricsCollector(store, label_names, interval, self.staleness)
        )
        if top_jobs > 0:  # off by default: its series grow with the number of targets
            self.job_registry.register(
                TopJobsCollector(store, label_names, top_jobs, self.staleness)
            )
        self.self_registry = CollectorRegistry(auto_describe=True)
        self.self_registry.register(
            TargetStatusCollector(store, label_names, interval, max_staleness)
        )
        self.polls = PollMetrics(self.self_registry, targets, label_names)
        # The quota series are few (tens of quotas) and their age moves with the clock: they
        # are rendered per scrape with the exporter's own.
        operations = [
            op
            for op, on in (
                (LIST_QUOTAS_ACTION, quota_poll.quotas),
                (USAGE_ACTION, quota_poll.usage),
            )
            if on
        ]
        self.quota_polls = QuotaPollMetrics(self.self_registry, targets, label_names, operations)
        if quota_store is not None and quota_poll.enabled:
            self.self_registry.register(QuotaCollector(quota_store, label_names, quota_poll, clock))
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.self_registry.register(collector)
