"""The opt-in per-job view: each target's top jobs as series that name the job and its owner.

Off unless ``metrics.top_jobs`` is above 0. With N, each target exports at most 2N jobs (the top
N by CU share and the top N by run time; a job in both counts once), three series each::

    # HELP maxcompute_running_job_cu_ratio The job's cuSnapshot, its share of the quota's CUs ...
    # TYPE maxcompute_running_job_cu_ratio gauge
    maxcompute_running_job_cu_ratio{instance_id="2026112500000001",owner="RAM$etl:robot",
                                    project="etl",quota="etl_quota",region="cn-hangzhou"} 0.25

(one line in the exposition; wrapped here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.api.wire.jobs import RunningJob
from exporter.metrics.families import target_label_values
from exporter.metrics.staleness import NEVER_STALE, Staleness
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus


@dataclass(frozen=True, slots=True)
class JobSeries:
    """One per-job metric family: its name, HELP text and the job field it reads."""

    name: str
    help: str
    value: Callable[[RunningJob], float]


def clamped_progress(job: RunningJob) -> float:
    return min(1.0, max(0.0, job.progress))


TOP_JOB_METRICS = (
    JobSeries(
        "maxcompute_running_job_cu_ratio",
        "The job's cuSnapshot, its share of the quota's CUs",
        lambda job: job.cu_snapshot,
    ),
    JobSeries(
        "maxcompute_running_job_progress_ratio",
        "The job's progress, 0..1 (out-of-range values clamped)",
        clamped_progress,
    ),
    JobSeries(
        "maxcompute_running_job_start_timestamp_seconds",
        "The job's runningAtTime, Unix seconds: time() - x is how long it has run",
        lambda job: job.running_at,
    ),
)


class TopJobsCollector(Collector):
    """Turns each served snapshot's top jobs into per-job series; a finished job vanishes."""

    def __init__(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        top_jobs: int,
        staleness: Staleness = NEVER_STALE,
    ) -> None:
        self._store = store
        self._label_names = label_names
        self._staleness = staleness
        self._labels = ["region", *label_names, "quota", "project", "instance_id", "owner"]
        self._suffix = (
            f" (one of the target's top {top_jobs} running jobs by CU share or by run time; "
            "from a background poll of GetRunningJobs)."
        )

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(metric.name, metric.help + self._suffix, labels=self._labels)
            for metric in TOP_JOB_METRICS
        ]

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        return iter(self.families_for(self._staleness.served(self._store.statuses())))

    def families_for(self, statuses: Iterable[TargetStatus]) -> list[GaugeMetricFamily]:
        """The per-job families of ``statuses`` alone."""
        families = self._families()
        for status in statuses:
            target_values = target_label_values(status.target, self._label_names)
            for job in status.snapshot.top_jobs:
                labels = [*target_values, job.quota, job.project, job.instance_id, job.owner]
                for metric, family in zip(TOP_JOB_METRICS, families, strict=True):
                    family.add_metric(labels, metric.value(job))
        return families
