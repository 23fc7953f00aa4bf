"""Consumption: the running jobs' CU and memory shares integrated over time, as counters.

Fed by the pollers' observer after each good poll is published (``poll_published``) and told
of each failed one (``poll_failed``); the integration itself is ``polling.derive.consumption``.
For example::

    # HELP maxcompute_cu_share_seconds_total The running jobs' cuSnapshot integrated over time ...
    # TYPE maxcompute_cu_share_seconds_total counter
    maxcompute_cu_share_seconds_total{project="etl",quota="etl_quota",region="cn-hangzhou"} 1800.0
    # TYPE maxcompute_owner_cu_share_seconds_total counter
    maxcompute_owner_cu_share_seconds_total{owner="ALIYUN$a@x",quota="etl_quota",...} 900.0

A job holding half its quota for an hour adds 1 800. Counters per (quota, project) exist from
the first poll that sees the group, at 0, and are never dropped. Projects (and, in the owner
view, owners) fold into ``__other__`` as the jobs-over-time counters' do: the first names seen
per target and quota keep series of their own, later ones count under ``__other__``; no counter
ever moves between series, so ``rate()`` and sums over projects stay exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Target
from exporter.metrics.families import target_label_values
from exporter.polling.derive.consumption import (
    Consumption,
    ConsumptionTracker,
    Gap,
    JobShare,
    SharePoll,
)
from exporter.polling.derive.project_fold import OTHER_PROJECT

# A job whose record names no owner counts under this owner (not a valid account name).
UNKNOWN_OWNER = "__unknown__"


class FirstSeenNames:
    """Per scope (a target and quota), the first ``limit`` names seen keep their own; later
    ones, and the literal ``__other__``, are ``__other__``. The set never changes, so a
    counter never moves from one series to another."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._named: dict[tuple[str, ...], set[str]] = {}

    def name(self, scope: tuple[str, ...], name: str) -> str:
        """``name`` as counted in ``scope``: itself or ``__other__``."""
        named = self._named.setdefault(scope, set())
        if name not in named:
            if name == OTHER_PROJECT or len(named) >= self._limit:
                return OTHER_PROJECT
            named.add(name)
        return name


class ConsumptionMetrics(Collector):
    """Integrates each target's jobs' shares between good polls into counters.

    Counted after a poll is published, so its series are rendered per scrape with the
    exporter's own metrics, never cached with a snapshot's.
    """

    def __init__(
        self,
        label_names: tuple[str, ...],
        interval: float,
        tracker: ConsumptionTracker | None = None,
        *,
        max_projects: int = 500,
        owners: bool = False,
        max_owners: int = 20,
    ) -> None:
        self._label_names = label_names
        self._interval = interval
        # Handed on by a reload, so unchanged targets are not baselines again.
        self.tracker = tracker if tracker is not None else ConsumptionTracker()
        self._projects = FirstSeenNames(max_projects)
        self._owners = FirstSeenNames(max_owners) if owners else None
        self._lock = threading.Lock()
        # Keyed by (region, *labels, quota, project); values are [cu, memory] share-seconds.
        self._groups: dict[tuple[str, ...], list[float]] = {}
        self._owner_cu: dict[tuple[str, ...], float] = {}
        # Per target (region, *labels): unmeasured seconds and the finished jobs' bound.
        self._unmeasured: dict[tuple[str, ...], float] = {}
        self._bound: dict[tuple[str, ...], float] = {}

    def poll_failed(self, target: Target) -> None:
        """A poll of ``target`` failed: the time until the next good one is not integrated."""
        self.tracker.interrupt(target)

    def poll_published(self, target: Target, window: TimeSlice, jobs: Iterable[RunningJob]) -> None:
        """A good poll of ``target``: integrate since the last one and count it."""
        poll = SharePoll.of(window.end, jobs)
        added = self.tracker.observe(target, poll)
        values = tuple(target_label_values(target, self._label_names))
        with self._lock:
            self._unmeasured.setdefault(values, 0.0)
            self._bound.setdefault(values, 0.0)
            for job in poll.jobs.values():
                self._add(values, job, 0.0, 0.0)
            if isinstance(added, Gap):
                self._unmeasured[values] += added.seconds
            elif isinstance(added, Consumption):
                self._count(values, added)

    def _count(self, values: tuple[str, ...], added: Consumption) -> None:
        for part in added.parts:
            self._add(values, part.job, part.cu_seconds, part.memory_seconds)
        self._bound[values] += added.cu_bound

    def _add(self, values: tuple[str, ...], job: JobShare, cu: float, memory: float) -> None:
        scope = (*values, job.quota)
        key = (*scope, self._projects.name(scope, job.project))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = [0.0, 0.0]
        # Shares are never negative (the parser skips those): the counters never decrease.
        group[0] += cu
        group[1] += memory
        if self._owners is not None:
            owner_key = (*scope, self._owners.name(scope, job.owner or UNKNOWN_OWNER))
            self._owner_cu[owner_key] = self._owner_cu.get(owner_key, 0.0) + cu

    def _families(self) -> tuple[Metric, ...]:
        target_labels = ["region", *self._label_names]
        group_labels = [*target_labels, "quota", "project"]
        rule = (
            f"between two good polls of GetRunningJobs (every {self._interval:g}s): the "
            "trapezoid for a job seen at both, from runningAtTime for one that started between "
            "them, half the interval for one that finished between them; a gap left by a failed "
            "poll is not counted"
        )
        families: tuple[Metric, ...] = (
            CounterMetricFamily(
                "maxcompute_cu_share_seconds_total",
                f"The running jobs' cuSnapshot (share of the quota's CUs) integrated over time, "
                f"{rule}. A job holding 0.5 for an hour adds 1800.",
                labels=group_labels,
            ),
            CounterMetricFamily(
                "maxcompute_memory_share_seconds_total",
                f"The running jobs' memorySnapshot (share of the quota's memory) integrated over "
                f"time, {rule}.",
                labels=group_labels,
            ),
            CounterMetricFamily(
                "maxcompute_exporter_consumption_unmeasured_seconds_total",
                "Seconds between two good polls that a failed poll in between left out of the "
                "share-seconds counters (never filled in).",
                labels=target_labels,
            ),
            CounterMetricFamily(
                "maxcompute_exporter_consumption_cu_share_seconds_bound_total",
                "The most the CU share-seconds may be off by for jobs that finished between two "
                "polls (each counted as running half the interval): the sum of their bounds.",
                labels=target_labels,
            ),
        )
        if self._owners is not None:
            families += (
                CounterMetricFamily(
                    "maxcompute_owner_cu_share_seconds_total",
                    f"The running jobs' cuSnapshot integrated over time by jobOwner, {rule}. "
                    "Jobs scheduled by DataWorks may all run under one account.",
                    labels=[*target_labels, "quota", "owner"],
                ),
            )
        return families

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        cu, memory, unmeasured, bound = families[:4]
        with self._lock:
            for key, (cu_seconds, memory_seconds) in sorted(self._groups.items()):
                cu.add_metric(list(key), cu_seconds)
                memory.add_metric(list(key), memory_seconds)
            for values, seconds in sorted(self._unmeasured.items()):
                unmeasured.add_metric(list(values), seconds)
            for values, seconds in sorted(self._bound.items()):
                bound.add_metric(list(values), seconds)
            if len(families) > 4:
                for key, seconds in sorted(self._owner_cu.items()):
                    families[4].add_metric(list(key), seconds)
        return iter(families)
