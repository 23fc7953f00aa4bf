"""Consumption between two good polls of a target: each job's share of its quota, integrated.

A step of its own after the snapshot is published, beside ``job_changes``: it reads a good
poll's jobs (handed up by the poller's observer) and integrates their ``cuSnapshot`` and
``memorySnapshot`` over the time since the last good poll of the same target. A poll's time is
its window's end (the second the poll began, as ``job_changes`` takes it). Between the polls at
``a`` and ``b``, for each job:

- **seen at both**: the trapezoid, ``(share_a + share_b) / 2 * (b - a)``; exact while the share
  stays constant (or changes linearly) between the polls;
- **new at b** (started between them): ``share_b * (b - max(runningAtTime, a))``; exact while
  the share has been constant since the job started;
- **gone at b** (finished between them, or slid out of the window): ``share_a * (b - a) / 2``,
  as if it finished half-way; its true part lies in ``[0, share_a * (b - a)]``, so the error
  is at most ``share_a * (b - a) / 2`` per job, and it is added to the reported bound.

A job that starts and finishes between two polls is never seen and adds nothing. A failed poll
in between (``interrupt``) breaks the chain: the next good poll is a new starting point, its
gap is reported as unmeasured seconds and never filled in. The first good poll of a target is
a baseline and adds nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from exporter.api.wire.jobs import RunningJob
from exporter.config import Target

# (quota, project) or (quota, owner): plain tuples, hashed and compared at C speed per job.
Group = tuple[str, str]


@dataclass(frozen=True, slots=True)
class JobShare:
    """What is kept of a running job between two polls: its group, owner, shares and start."""

    quota: str
    project: str
    owner: str
    cu: float
    memory: float
    running_at: int


@dataclass(frozen=True, slots=True)
class SharePoll:
    """The running jobs of one good poll, by ``instanceId``, and the poll's time."""

    at: int
    jobs: Mapping[str, JobShare]

    @classmethod
    def of(
        cls, at: int, jobs: Iterable[RunningJob], known: Mapping[str, JobShare] | None = None
    ) -> SharePoll:
        """A poll's jobs as kept: names interned, so 10 000 jobs share a few strings.

        A job in ``known`` (the last poll's) keeps its record if its shares did not move, and
        its names if they did: most jobs run through many polls.
        """
        intern, known = sys.intern, known or {}
        kept = {}
        for job in jobs:
            cu, memory = job.cu_snapshot, job.memory_snapshot
            was = known.get(job.instance_id)
            if was is None or was.quota != job.quota or was.project != job.project:
                was = JobShare(
                    intern(job.quota), intern(job.project), intern(job.owner), cu, memory,
                    job.running_at,
                )  # fmt: skip
            elif was.cu != cu or was.memory != memory:
                was = JobShare(was.quota, was.project, was.owner, cu, memory, was.running_at)
            kept[job.instance_id] = was
        return cls(at, kept)

    def groups(self) -> set[Group]:
        """The (quota, project) groups of the jobs running at this poll."""
        return {(job.quota, job.project) for job in self.jobs.values()}

    def owners(self) -> set[Group]:
        """The (quota, owner) pairs of the jobs running at this poll."""
        return {(job.quota, job.owner) for job in self.jobs.values()}


@dataclass(frozen=True, slots=True)
class Consumption:
    """What two successive good polls of a target add up to, per group."""

    # (quota, project) -> (CU share-seconds, memory share-seconds)
    groups: Mapping[Group, tuple[float, float]]
    # (quota, owner) -> CU share-seconds ('' where a job names no owner)
    owners: Mapping[Group, float]
    # The most the CU share-seconds of the finished jobs may be off by (half their interval).
    cu_bound: float


@dataclass(frozen=True, slots=True)
class Gap:
    """Seconds between two good polls that a failed poll left unmeasured (never filled in)."""

    seconds: int


def _job_seconds(last: SharePoll, new: SharePoll) -> Iterator[tuple[JobShare, float, float]]:
    """Each job's (CU, memory) share-seconds between the two polls (see the module doc)."""
    span = max(0, new.at - last.at)
    before = last.jobs
    for instance_id, job in new.jobs.items():
        was = before.get(instance_id)
        if was is not None:
            yield job, (was.cu + job.cu) / 2 * span, (was.memory + job.memory) / 2 * span
        else:
            ran = new.at - min(new.at, max(job.running_at, last.at))
            yield job, job.cu * ran, job.memory * ran
    for instance_id in before.keys() - new.jobs.keys():
        job = before[instance_id]
        yield job, job.cu * span / 2, job.memory * span / 2


def consumption(last: SharePoll, new: SharePoll) -> Consumption:
    """The share-seconds between ``last`` and ``new``, summed per group (see the module doc)."""
    cu_sums: dict[Group, float] = {}
    memory_sums: dict[Group, float] = {}
    owners: dict[Group, float] = {}
    for job, cu, memory in _job_seconds(last, new):
        # Summed in plain dicts of floats: the per-job cost of this step is these few lines.
        key, owner = (job.quota, job.project), (job.quota, job.owner)
        cu_sums[key] = cu_sums.get(key, 0.0) + cu
        memory_sums[key] = memory_sums.get(key, 0.0) + memory
        owners[owner] = owners.get(owner, 0.0) + cu
    span = max(0, new.at - last.at)
    gone = last.jobs.keys() - new.jobs.keys()
    bound = sum(last.jobs[instance_id].cu for instance_id in gone) * span / 2
    groups = {key: (cu, memory_sums[key]) for key, cu in cu_sums.items()}
    return Consumption(groups, owners, bound)


class ConsumptionTracker:
    """Each target's last good poll, whether a failed poll came after it, and what the next
    good poll adds.

    Keyed by the target itself, so a target whose configuration changed is a new target: its
    first poll is a baseline. A reload hands the tracker on (``retain``), so an unchanged
    target's first poll after it integrates from its last poll before it.
    """

    def __init__(self) -> None:
        self._last: dict[Target, SharePoll] = {}
        self._interrupted: set[Target] = set()

    def retain(self, targets: Iterable[Target]) -> None:
        """Forget every target but ``targets`` (the configuration's, after a reload)."""
        keep = set(targets)
        self._last = {target: poll for target, poll in self._last.items() if target in keep}
        self._interrupted &= keep

    def interrupt(self, target: Target) -> None:
        """A poll of ``target`` failed: the time until its next good poll goes unmeasured."""
        if target in self._last:
            self._interrupted.add(target)

    def last(self, target: Target) -> SharePoll | None:
        """``target``'s last good poll, if there was one."""
        return self._last.get(target)

    def tracked(self) -> int:
        """Jobs remembered across all targets (the memory this step holds)."""
        return sum(len(poll.jobs) for poll in self._last.values())

    def observe(self, target: Target, poll: SharePoll) -> Consumption | Gap | None:
        """Remember ``poll`` as ``target``'s last good one; what it adds since the last, a
        ``Gap`` when a failed poll came between them, None for a baseline."""
        last = self._last.get(target)
        self._last[target] = poll
        if last is None:
            return None
        if target in self._interrupted:
            self._interrupted.discard(target)
            return Gap(max(0, poll.at - last.at))
        return consumption(last, poll)
