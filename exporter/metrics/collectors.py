"""Collectors over the snapshot: job aggregates, and each target's state.

Job metrics, one family per aggregate, labelled by region, quota, project and the target's
constant labels, for example::

    # HELP maxcompute_running_jobs Running jobs (from a background poll ... every 60s).
    # TYPE maxcompute_running_jobs gauge
    maxcompute_running_jobs{account="prod",project="etl",quota="my_quota",region="cn-hangzhou"} 3.0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.api.wire.jobs import is_renderable
from exporter.config import Target
from exporter.metrics.families import JOB_METRICS, target_label_values
from exporter.metrics.staleness import NEVER_STALE, Staleness
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.collector")


class JobMetricsCollector(Collector):
    """Turns each served snapshot's groups into job series; a vanished group vanishes here too."""

    def __init__(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        interval: float,
        staleness: Staleness = NEVER_STALE,
        intervals: set[float] | frozenset[float] = frozenset(),
    ) -> None:
        self._store = store
        self._label_names = label_names
        self._staleness = staleness
        self._labels = ["region", *label_names, "quota", "project"]
        # ``intervals``: every target's own; one shared interval is named, several are not.
        every = f"every {interval:g}s"
        if intervals - {interval}:
            every = "every poll.interval of the target (maxcompute_exporter_poll_interval_seconds)"
        self._suffix = f" (from a background poll of GetRunningJobs {every})."

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(metric.name, metric.help + self._suffix, labels=self._labels)
            for metric in JOB_METRICS
        ]

    def describe(self) -> Iterator[Metric]:
        # Registering must never trigger a collection (and so never wait on the API).
        return iter(self._families())

    def _samples(self, status: TargetStatus) -> list[tuple[int, list[str], float]]:
        """(metric index, labels, value) of one target's snapshot; unrenderable groups left out."""
        samples = []
        target_values = target_label_values(status.target, self._label_names)
        for key, group in status.snapshot.groups.items() if status.snapshot else ():
            # jobs.parse_job lets no such name through; this keeps one slip from costing a scrape.
            if not (is_renderable(key.quota) and is_renderable(key.project)):
                continue
            labels = [*target_values, key.quota, key.project]
            for index, metric in enumerate(JOB_METRICS):
                value = metric.value(group)
                if value is not None:
                    samples.append((index, labels, value))
        return samples

    def collect(self) -> Iterator[Metric]:
        return iter(self.families_for(self._staleness.served(self._store.statuses())))

    def families_for(self, statuses: Iterable[TargetStatus]) -> list[GaugeMetricFamily]:
        """The job families of ``statuses`` alone (the renderer renders a target at a time)."""
        families = self._families()
        for status in statuses:
            try:
                samples = self._samples(status)
            except Exception:
                # One target's bad snapshot must not take the others' series down with it.
                log.exception("rendering a target's job metrics failed: left out")
                continue
            for index, labels, value in samples:
                families[index].add_metric(labels, value)
        return families


class TargetStatusCollector(Collector):
    """Reports each target's state: ``maxcompute_up``, last success, settings, build info."""

    def __init__(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        interval: float,
        max_staleness: float = math.inf,
        *,
        intervals: Mapping[Target, float] | None = None,
        limits: Mapping[Target, float] | None = None,
    ) -> None:
        self._store = store
        self._label_names = label_names
        self._labels = ["region", *label_names]
        self._interval = interval
        self._max_staleness = max_staleness
        # Targets with their own targets[].poll: their interval and staleness limit.
        self._intervals = intervals or {}
        self._limits = limits or {}

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "maxcompute_up",
                f"1 if the last poll of GetRunningJobs ({self._every()}) succeeded, else 0.",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_last_success_timestamp_seconds",
                "When the last successful poll ended, Unix seconds.",
                labels=self._labels,
            ),
            # Settings as series, so alert rules compare ages with the exporter's own
            # settings instead of constants that are right for one configuration only.
            GaugeMetricFamily(
                "maxcompute_exporter_poll_interval_seconds",
                "How often the target is polled (poll.interval).",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_max_staleness_seconds",
                "How long after its last good poll a failing target's job series are still "
                "served (poll.max_staleness).",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_build_info",
                "Build information of the exporter; constant 1.",
                labels=["version"],
            ),
        )

    def _every(self) -> str:
        if set(self._intervals.values()) - {self._interval}:
            return "every maxcompute_exporter_poll_interval_seconds"
        return f"every {self._interval:g}s"

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        up, last_success, interval, max_staleness, build_info = families
        for status in self._store.statuses():
            target = status.target
            values = target_label_values(target, self._label_names)
            up.add_metric(values, 1.0 if status.up else 0.0)
            if status.last_success is not None:
                last_success.add_metric(values, status.last_success)
            interval.add_metric(values, self._intervals.get(target, self._interval))
            limit = self._limits.get(target, self._max_staleness)
            if math.isfinite(limit):
                max_staleness.add_metric(values, limit)
        build_info.add_metric([__version__], 1.0)
        return iter(families)
