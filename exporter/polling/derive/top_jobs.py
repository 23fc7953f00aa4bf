"""A bounded top N of one target's running jobs: the largest by CU share and the longest running.

Jobs are offered one at a time, as pages arrive; two heaps of at most N entries each hold the
leaders so far, so the memory stays O(N) whatever the size of the tenant. Ties are broken by
``instance_id`` (the smaller wins), so the same job set always names the same jobs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from exporter.api.wire.jobs import RunningJob


@dataclass(frozen=True, slots=True)
class _Descending:
    """Orders strings backwards, so a min-heap's root is the worst of equal-keyed jobs."""

    text: str

    def __lt__(self, other: _Descending) -> bool:
        return other.text < self.text


# A heap entry: (rank key, tie-break, job); the root is the entry to drop first.
_Entry = tuple[float, _Descending, RunningJob]


def _offer(heap: list[_Entry], entry: _Entry, size: int) -> None:
    if len(heap) < size:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


class TopJobs:
    """The top ``size`` jobs by ``cu_snapshot`` and by run time (earliest ``running_at``)."""

    __slots__ = ("_by_cu", "_by_run_time", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._by_cu: list[_Entry] = []
        self._by_run_time: list[_Entry] = []

    def add(self, job: RunningJob) -> None:
        """Offer one job; each ``instance_id`` must be offered once."""
        if self._size <= 0:
            return
        tie = _Descending(job.instance_id)
        _offer(self._by_cu, (job.cu_snapshot, tie, job), self._size)
        # An earlier start is a longer run: negated, the longest run is the largest key.
        _offer(self._by_run_time, (-float(job.running_at), tie, job), self._size)

    def jobs(self) -> tuple[RunningJob, ...]:
        """Both tops, each job once, sorted by (quota, project, instance_id)."""
        chosen = {entry[2].instance_id: entry[2] for entry in (*self._by_cu, *self._by_run_time)}
        return tuple(sorted(chosen.values(), key=lambda j: (j.quota, j.project, j.instance_id)))
