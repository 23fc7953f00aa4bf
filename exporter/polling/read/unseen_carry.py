"""Jobs a read could not show but its counts say are there, carried from the last read.

A part of a dense second whose answers showed fewer jobs than its ``totalCount`` said (a
service that lists one second's jobs in another order on every answer) has ``unseen`` jobs:
running, uncounted in the gauges, and unnamed. The jobs-over-time diff must not take them for
finished, nor for started when an answer shows them again. So the jobs of that part the last
read showed and this one did not are carried as still running, at most ``unseen`` of them: the
count says that many are there; any more of them did finish (which ones cannot be told, so the
excess is counted finished, keeping started minus finished equal to the change in jobs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter.api.wire.jobs import RunningJob
from exporter.polling.read.read_result import WindowRead


def carried_jobs(last: Mapping[str, RunningJob], read: WindowRead) -> list[RunningJob]:
    """The jobs of ``last`` (the last read's dense jobs) taken as still running after ``read``."""
    shown = {job.instance_id for job in read.jobs()}
    carried: dict[str, RunningJob] = {}
    for part in read.unsure:
        missing = sorted(
            instance_id
            for instance_id, job in last.items()
            if instance_id not in shown and instance_id not in carried and part.holds(job)
        )
        carried.update((instance_id, last[instance_id]) for instance_id in missing[: part.unseen])
    return list(carried.values())


def dense_jobs(jobs: Iterable[RunningJob], read: WindowRead) -> dict[str, RunningJob]:
    """``jobs`` submitted in the slices of ``read`` too narrow to cut by time, by id: all the
    next read may need to carry (a few thousand at most, not the window)."""
    seconds = {
        second
        for piece in read.slices
        if not piece.piece.splittable
        for second in range(piece.piece.start, piece.piece.end + 1)
    }
    return {job.instance_id: job for job in jobs if job.submitted_at in seconds}
