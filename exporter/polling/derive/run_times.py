"""How long each quota's running jobs had been running at a poll, in buckets: a gauge histogram.

Pure arithmetic, folded in one job at a time with the aggregates: each job's run time at the
poll (from ``runningAtTime`` to the poll's time, the end of its window) falls in one bucket; the
counts are made cumulative at the end, as Prometheus's ``le`` buckets are.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.api.wire.jobs import RunningJob


@dataclass(frozen=True, slots=True)
class RunTimes:
    """One quota's running jobs by run time: ``cumulative[i]`` ran at most ``bounds[i]``."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    sum_seconds: int

    def buckets(self) -> list[tuple[float, int]]:
        """(upper bound, count) pairs, ending with infinity: the exposition's buckets."""
        pairs = list(zip(self.bounds, self.cumulative, strict=True))
        return [*pairs, (float("inf"), self.count)]


class RunTimeFold:
    """Counts running jobs per quota by how long they had run at ``at`` (Unix seconds)."""

    __slots__ = ("_at", "_bounds", "_counts", "_sums")

    def __init__(self, bounds: tuple[float, ...], at: int) -> None:
        self._bounds = bounds
        self._at = at
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, int] = {}

    def add(self, job: RunningJob) -> None:
        seconds = max(0, self._at - job.running_at)
        counts = self._counts.get(job.quota)
        if counts is None:
            counts = self._counts[job.quota] = [0] * (len(self._bounds) + 1)
            self._sums[job.quota] = 0
        # le is inclusive: a run of exactly 3600 s is in the 3600 bucket.
        counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self._sums[job.quota] += seconds

    def result(self) -> Mapping[str, RunTimes]:
        results = {}
        for quota in sorted(self._counts):
            counts = self._counts[quota]
            cumulative, running = [], 0
            for count in counts[:-1]:
                running += count
                cumulative.append(running)
            results[quota] = RunTimes(
                self._bounds, tuple(cumulative), running + counts[-1], self._sums[quota]
            )
        return results
