"""What changed between two good polls of a target: the jobs that started and that finished.

A step of its own after the snapshot is published: it reads a good poll's jobs (handed up by
the poller's observer) and compares them with the last good poll of the same target. The read
knows nothing of it.

- A job in the new poll and not in the last one **started** (it was not running when its slice
  of the last poll was read), unless it was submitted before the last poll's window began: it
  was out of that poll's view, so it only came into view (a longer window).
- A job in the last poll and not in the new one **finished**, unless it was submitted before
  the new poll's window begins: it slid out of the window, still running or not; it is not
  counted.
- A finished job ran at least from ``runningAtTime`` to the last poll that saw it: the start of
  that poll (its window's end). A lower bound, short by less than the time between the two
  polls.
- The first good poll of a target is a baseline and counts nothing; a failed poll is never
  handed up, so the next good one is compared with the last good one.
- A job counted finished that is seen running again (an answer that left it out, or a service
  flapping) **reappeared**: not a new start; and it is not counted finished a second time. The
  tracker remembers the jobs counted finished while they are still in the window (at most
  ``MAX_FINISHED_REMEMBERED`` per target, the oldest forgotten first).
- A poll whose counts said more jobs than its answers showed (``UnseenJobs``: a service listing
  one second's jobs in another order on every answer) may have missed a running job: a job new
  to the next poll in that part, up to that many, was unseen, not started (counted as
  came into view). The poller hands up the last poll's jobs of such a part that the new one
  did not show as still running, up to the new poll's own unseen count, so none is finished.
"""

from __future__ import annotations

import sys
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Target


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """What is kept of a running job between two polls: its group and its two times."""

    quota: str
    project: str
    submitted_at: int
    running_at: int

    @property
    def queue_seconds(self) -> int:
        """How long it waited for CUs: from submission to start (0 if the times disagree)."""
        return max(0, self.running_at - self.submitted_at)


@dataclass(frozen=True, slots=True)
class UnseenJobs:
    """``count`` jobs a poll's counts said are submitted in ``piece`` (of one of ``quotas``,
    any quota when empty) that none of its answers showed."""

    piece: TimeSlice
    quotas: tuple[str, ...]
    count: int

    def holds(self, job: TrackedJob) -> bool:
        return self.piece.contains(job.submitted_at) and (
            not self.quotas or job.quota in self.quotas
        )


@dataclass(frozen=True, slots=True)
class SeenJobs:
    """The running jobs of one good poll, by ``instanceId``, the window it read, and the jobs
    its counts said were there unseen."""

    window: TimeSlice
    jobs: Mapping[str, TrackedJob]
    unseen: tuple[UnseenJobs, ...] = ()

    @classmethod
    def of(
        cls,
        window: TimeSlice,
        jobs: Iterable[RunningJob],
        known: Mapping[str, TrackedJob] | None = None,
        unseen: tuple[UnseenJobs, ...] = (),
    ) -> SeenJobs:
        """A poll's jobs as tracked: names interned, so 10 000 jobs share a few strings.

        A job in ``known`` (the last poll's) is kept as it was: most jobs run through many
        polls, and a look-up costs less than a new record.
        """
        intern, known = sys.intern, known or {}
        tracked = {}
        for job in jobs:
            record = known.get(job.instance_id)
            if record is None:
                record = TrackedJob(
                    intern(job.quota), intern(job.project), job.submitted_at, job.running_at
                )
            tracked[job.instance_id] = record
        return cls(window, tracked, unseen)


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """A job seen running by one poll and gone from the next while still in its window."""

    job: TrackedJob
    # From runningAtTime to the last poll that saw it running: a lower bound.
    run_seconds: int
    # Remembered by the tracker, so that the job seen again is not started nor finished twice.
    instance_id: str = ""


@dataclass(frozen=True, slots=True)
class JobChanges:
    """What happened between two good polls of a target."""

    started: tuple[TrackedJob, ...]
    finished: tuple[FinishedJob, ...]
    # Gone because their submission slid out of the window: neither finished nor counted.
    aged_out: int
    # New to the view because it reaches further back than the last one's: not started.
    came_into_view: int

    # Counted finished before and seen running again: not started (nor finished twice).
    reappeared: tuple[TrackedJob, ...] = ()


NO_CHANGES = JobChanges((), (), 0, 0)
# Per target, the jobs counted finished that are remembered (about 100 bytes each).
MAX_FINISHED_REMEMBERED = 100_000


def job_changes(
    last: SeenJobs, new: SeenJobs, finished_before: Container[str] = frozenset()
) -> JobChanges:
    """The jobs that started and finished between ``last`` and ``new`` (see the module doc);
    ``finished_before``: the ids counted finished at an earlier poll."""
    started, came_into_view, reappeared = [], 0, []
    unseen_left = [part.count for part in last.unseen]
    for instance_id in sorted(new.jobs.keys() - last.jobs.keys()):
        job = new.jobs[instance_id]
        if instance_id in finished_before:
            reappeared.append(job)
        elif job.submitted_at < last.window.start or was_unseen(job, last.unseen, unseen_left):
            came_into_view += 1
        else:
            started.append(job)
    finished, aged_out = [], 0
    seen_at = last.window.end
    for instance_id in last.jobs.keys() - new.jobs.keys():
        job = last.jobs[instance_id]
        if job.submitted_at < new.window.start:
            aged_out += 1
        elif instance_id not in finished_before:
            finished.append(FinishedJob(job, max(0, seen_at - job.running_at), instance_id))
    return JobChanges(tuple(started), tuple(finished), aged_out, came_into_view, tuple(reappeared))


def was_unseen(job: TrackedJob, unseen: tuple[UnseenJobs, ...], left: list[int]) -> bool:
    """True if ``job`` may be one of the last poll's unseen jobs; takes it from ``left``."""
    for index, part in enumerate(unseen):
        if left[index] > 0 and part.holds(job):
            left[index] -= 1
            return True
    return False


class JobTracker:
    """Each target's last good poll, and what changed at each new one.

    Keyed by the target itself (region, endpoint, filters, labels, credentials), so a target
    whose configuration changed is a new target: its first poll is a baseline. A reload hands
    the tracker on (``retain``), so an unchanged target's first poll after it is compared with
    its last poll before it.
    """

    def __init__(self) -> None:
        self._last: dict[Target, SeenJobs] = {}
        # Per target, the jobs counted finished (instanceId -> submittedAtTime), oldest first.
        self._finished: dict[Target, dict[str, int]] = {}

    def retain(self, targets: Iterable[Target]) -> None:
        """Forget every target but ``targets`` (the configuration's, after a reload)."""
        keep = set(targets)
        self._last = {target: seen for target, seen in self._last.items() if target in keep}
        self._finished = {t: ids for t, ids in self._finished.items() if t in keep}

    def last(self, target: Target) -> SeenJobs | None:
        """``target``'s last good poll, if there was one."""
        return self._last.get(target)

    def tracked(self) -> int:
        """Jobs remembered across all targets (the memory this step holds)."""
        running = sum(len(seen.jobs) for seen in self._last.values())
        return running + sum(len(ids) for ids in self._finished.values())

    def observe(self, target: Target, seen: SeenJobs) -> JobChanges | None:
        """Remember ``seen`` as ``target``'s last good poll; None for a baseline."""
        last = self._last.get(target)
        self._last[target] = seen
        if last is None:
            return None
        finished = self._finished.setdefault(target, {})
        changes = job_changes(last, seen, finished)
        self._remember(finished, changes, seen.window.start)
        return changes

    @staticmethod
    def _remember(finished: dict[str, int], changes: JobChanges, window_start: int) -> None:
        """Add the jobs counted finished; forget those out of the window (they cannot come
        back into it) and, past the bound, the oldest."""
        for instance_id in [i for i, submitted in finished.items() if submitted < window_start]:
            del finished[instance_id]
        for done in changes.finished:
            finished[done.instance_id] = done.job.submitted_at
        for instance_id in list(finished)[: max(0, len(finished) - MAX_FINISHED_REMEMBERED)]:
            del finished[instance_id]
