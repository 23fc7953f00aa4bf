"""What each target's job series cost: how many are served, how many projects were folded.

Self-metrics, rendered per scrape from the served snapshots, for example::

    # HELP maxcompute_exporter_series Job series the target serves now ...
    # TYPE maxcompute_exporter_series gauge
    maxcompute_exporter_series{region="cn-hangzhou"} 808.0
    # HELP maxcompute_exporter_folded_projects Projects summed into project="__other__" ...
    # TYPE maxcompute_exporter_folded_projects gauge
    maxcompute_exporter_folded_projects{region="cn-hangzhou"} 1900.0
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import Target
from exporter.metrics.families import JOB_METRICS, target_label_values
from exporter.metrics.job_view import TOP_JOB_METRICS
from exporter.metrics.staleness import Staleness
from exporter.polling.publish.snapshot import Snapshot, SnapshotStore


def job_series(snapshot: Snapshot) -> int:
    """The job series ``snapshot`` is rendered as: aggregates and the per-job view."""
    aggregates = sum(
        sum(1 for metric in JOB_METRICS if metric.value(group) is not None)
        for group in snapshot.groups.values()
    )
    return aggregates + len(TOP_JOB_METRICS) * len(snapshot.top_jobs)


class SeriesCostCollector(Collector):
    """``maxcompute_exporter_series`` and ``_folded_projects``, one of each per target."""

    def __init__(self, store: SnapshotStore, label_names: tuple[str, ...], staleness: Staleness):
        self._store = store
        self._label_names = label_names
        self._labels = ["region", *label_names]
        self._staleness = staleness
        # Counted once per published snapshot, not per scrape: (snapshot, its series).
        self._counted: dict[Target, tuple[Snapshot, int]] = {}

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "maxcompute_exporter_series",
                "Job series the target serves now (aggregates and the per-job view); "
                "0 when it has none or its snapshot is stale.",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_folded_projects",
                'Projects summed into project="__other__" in the served snapshot, over all '
                "quotas (metrics.max_projects_per_quota).",
                labels=self._labels,
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def _series(self, target: Target, snapshot: Snapshot) -> int:
        counted = self._counted.get(target)
        if counted is None or counted[0] is not snapshot:
            counted = self._counted[target] = (snapshot, job_series(snapshot))
        return counted[1]

    def collect(self) -> Iterator[Metric]:
        series, folded = self._families()
        served = {s.target: s.snapshot for s in self._staleness.served(self._store.statuses())}
        for status in self._store.statuses():
            values = target_label_values(status.target, self._label_names)
            snapshot = served.get(status.target)
            series.add_metric(values, self._series(status.target, snapshot) if snapshot else 0)
            folded.add_metric(values, snapshot.folded_projects if snapshot else 0)
        return iter((series, folded))
