"""Running time now, per quota: a gauge histogram of how long the running jobs have run.

Read from each served snapshot (``Snapshot.run_times``), so it is as fresh as the other job
series and dropped with them when stale. For example::

    # TYPE maxcompute_running_jobs_run_time_seconds histogram
    maxcompute_running_jobs_run_time_seconds_bucket{le="3600.0",quota="etl_quota",...} 7.0
    maxcompute_running_jobs_run_time_seconds_bucket{le="+Inf",quota="etl_quota",...} 9.0
    maxcompute_running_jobs_run_time_seconds_gcount{quota="etl_quota",...} 9.0
    maxcompute_running_jobs_run_time_seconds_gsum{quota="etl_quota",...} 30120.0

Prometheus' text format has no gauge histogram type: prometheus-client writes its buckets as a
histogram's and its count and sum as two gauges (``_gcount``, ``_gsum``); OpenMetrics names the
type ``gaugehistogram``. Jobs running over an hour: ``_bucket{le="+Inf"} - _bucket{le="3600.0"}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeHistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.metrics.families import target_label_values
from exporter.metrics.staleness import NEVER_STALE, Staleness
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus

RUN_TIME_METRIC = "maxcompute_running_jobs_run_time_seconds"


class RunTimesCollector(Collector):
    """Turns each served snapshot's per-quota run times into a gauge histogram."""

    def __init__(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        interval: float,
        staleness: Staleness = NEVER_STALE,
    ) -> None:
        self._store = store
        self._label_names = label_names
        self._staleness = staleness
        self._help = (
            "Running jobs by how long they had been running at the last good poll (from "
            f"runningAtTime to the poll; a background poll of GetRunningJobs every {interval:g}s)."
        )

    def _family(self) -> GaugeHistogramMetricFamily:
        return GaugeHistogramMetricFamily(
            RUN_TIME_METRIC, self._help, labels=["region", *self._label_names, "quota"]
        )

    def describe(self) -> Iterator[Metric]:
        return iter([self._family()])

    def collect(self) -> Iterator[Metric]:
        return iter(self.families_for(self._staleness.served(self._store.statuses())))

    def families_for(self, statuses: Iterable[TargetStatus]) -> list[Metric]:
        """The gauge histogram of ``statuses`` alone (the renderer renders a target at a time)."""
        family = self._family()
        for status in statuses:
            target_values = target_label_values(status.target, self._label_names)
            for quota, run_times in status.snapshot.run_times.items():
                buckets = [(floatToGoString(le), float(n)) for le, n in run_times.buckets()]
                family.add_metric([*target_values, quota], buckets, float(run_times.sum_seconds))
        return [family]
