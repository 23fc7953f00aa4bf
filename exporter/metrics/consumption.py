"""Consumption: the running jobs' CU and memory shares integrated over time, as counters.

Fed by the pollers' observer after each good poll is published (``poll_published``) and told
of each failed one (``poll_failed``); the integration itself is ``polling.derive.consumption``.
For example::

    # HELP maxcompute_cu_share_seconds_total The running jobs' cuSnapshot integrated over time ...
    # TYPE maxcompute_cu_share_seconds_total counter
    maxcompute_cu_share_seconds_total{project="etl",quota="etl_quota",region="cn-hangzhou"} 1800.0
    # TYPE maxcompute_owner_cu_share_seconds_total counter
    maxcompute_owner_cu_share_seconds_total{owner="ALIYUN$a@x",quota="etl_quota",...} 900.0

A job holding half its quota for an hour adds 1 800. The series follow the one naming policy of
every counter keyed by (quota, project), ``polling.derive.counter_fold.CounterFold`` (bounded in
quotas and projects, retained while used, re-chosen slowly, the rest under ``__other__``), fed
one round per good poll with each group's CU share-seconds; the owner view has a fold of its own
with ``metrics.max_owners_per_quota`` owners per quota. No count is lost to ``rate()`` and sums
over projects stay exact.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Target
from exporter.metrics.families import target_label_values
from exporter.polling.derive.aggregation import GroupKey
from exporter.polling.derive.consumption import Consumption, ConsumptionTracker, Gap, SharePoll
from exporter.polling.derive.counter_fold import DEFAULT_FOLD_LIMITS, CounterFold, FoldLimits

# A job whose record names no owner counts under this owner (not a valid account name).
UNKNOWN_OWNER = "__unknown__"


class TargetCounters:
    """One target's share-seconds series: values per series, the folds that name them, and
    the unmeasured seconds and the finished jobs' bound."""

    def __init__(self, projects: CounterFold, owners: CounterFold | None) -> None:
        self.projects = projects
        self.owners = owners
        self.groups: dict[GroupKey, tuple[float, float]] = {}
        self.owner_cu: dict[GroupKey, float] = {}
        self.unmeasured = 0.0
        self.bound = 0.0

    def count(self, poll: SharePoll, added: Consumption | None) -> None:
        """One round: route ``added`` (None: nothing, a baseline or a gap) and settle the series."""
        groups = added.groups if added is not None else {}
        cu = {GroupKey(*key): seconds[0] for key, seconds in groups.items()}
        present = {GroupKey(*key) for key in poll.groups()}
        fold = self.projects.round(poll.at, present, cu)
        values = {key: list(self.groups.get(key, (0.0, 0.0))) for key in fold.series}
        for key, (cu_seconds, memory_seconds) in groups.items():
            # Shares are never negative (the parser skips those): the counters never decrease.
            series = values.setdefault(fold.routes[GroupKey(*key)], [0.0, 0.0])
            series[0] += cu_seconds
            series[1] += memory_seconds
        self.groups = {key: (pair[0], pair[1]) for key, pair in values.items()}
        if self.owners is not None:
            self._count_owners(self.owners, poll, added)

    def _count_owners(
        self, owners: CounterFold, poll: SharePoll, added: Consumption | None
    ) -> None:
        by_owner: dict[GroupKey, float] = {}
        for (quota, owner), seconds in (added.owners if added is not None else {}).items():
            key = GroupKey(quota, owner or UNKNOWN_OWNER)
            by_owner[key] = by_owner.get(key, 0.0) + seconds
        present = {GroupKey(quota, owner or UNKNOWN_OWNER) for quota, owner in poll.owners()}
        fold = owners.round(poll.at, present, by_owner)
        owner_cu = {key: self.owner_cu.get(key, 0.0) for key in fold.series}
        for key, seconds in by_owner.items():
            route = fold.routes[key]
            owner_cu[route] = owner_cu.get(route, 0.0) + seconds
        self.owner_cu = owner_cu


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
        limits: FoldLimits = DEFAULT_FOLD_LIMITS,
        owners: bool = False,
        max_owners: int = 20,
    ) -> None:
        self._label_names = label_names
        self._interval = interval
        # Handed on by a reload, so unchanged targets are not baselines again.
        self.tracker = tracker if tracker is not None else ConsumptionTracker()
        # One fold per target and family: projects as every counter's, owners their own cap.
        self._project_limits = limits
        self._owner_limits = dataclasses.replace(limits, max_projects=max_owners)
        self._owners = owners
        self._lock = threading.Lock()
        # Keyed by (region, *labels): each target's series.
        self._targets: dict[tuple[str, ...], TargetCounters] = {}

    def poll_failed(self, target: Target) -> None:
        """A poll of ``target`` failed: the time until the next good one is not integrated."""
        self.tracker.interrupt(target)

    def poll_published(self, target: Target, window: TimeSlice, jobs: Iterable[RunningJob]) -> None:
        """A good poll of ``target``: integrate since the last one and count it."""
        last = self.tracker.last(target)
        poll = SharePoll.of(window.end, jobs, last.jobs if last is not None else None)
        added = self.tracker.observe(target, poll)
        values = tuple(target_label_values(target, self._label_names))
        with self._lock:
            counters = self._targets.get(values)
            if counters is None:
                owners = self._owner_limits.fold() if self._owners else None
                projects = self._project_limits.fold()
                counters = self._targets[values] = TargetCounters(projects, owners)
            if isinstance(added, Gap):
                counters.unmeasured += added.seconds
            if isinstance(added, Consumption):
                counters.bound += added.cu_bound
            counters.count(poll, added if isinstance(added, Consumption) else None)

    def retain(self, targets: Iterable[Target]) -> None:
        """Forget the series of every target but ``targets``: a reload hands these counters
        on, so the targets it leaves unchanged keep counting where they were."""
        targets = tuple(targets)
        keep = {tuple(target_label_values(t, self._label_names)) for t in targets}
        self.tracker.retain(targets)
        with self._lock:
            self._targets = {v: c for v, c in self._targets.items() if v in keep}

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
        if self._owners:
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
            for values, counters in sorted(self._targets.items()):
                for key, (cu_seconds, memory_seconds) in sorted(counters.groups.items()):
                    cu.add_metric([*values, key.quota, key.project], cu_seconds)
                    memory.add_metric([*values, key.quota, key.project], memory_seconds)
                unmeasured.add_metric(list(values), counters.unmeasured)
                bound.add_metric(list(values), counters.bound)
                for key, seconds in sorted(counters.owner_cu.items()):
                    families[4].add_metric([*values, key.quota, key.project], seconds)
        return iter(families)
