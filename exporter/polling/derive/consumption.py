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
    def of(cls, at: int, jobs: Iterable[RunningJob]) -> SharePoll:
        """A poll's jobs as kept: names interned, so 10 000 jobs share a few strings."""
        intern = sys.intern
        kept = {
            job.instance_id: JobShare(
                intern(job.quota),
                intern(job.project),
                intern(job.owner),
                job.cu_snapshot,
                job.memory_snapshot,
                job.running_at,
            )
            for job in jobs
        }
        return cls(at, kept)


@dataclass(frozen=True, slots=True)
class JobPart:
    """One job's share-seconds between two polls."""

    job: JobShare
    cu_seconds: float
    memory_seconds: float


@dataclass(frozen=True, slots=True)
class Consumption:
    """What two successive good polls of a target add up to."""

    parts: tuple[JobPart, ...]
    # The most the CU share-seconds of the finished jobs may be off by (half their interval).
    cu_bound: float


@dataclass(frozen=True, slots=True)
class Gap:
    """Seconds between two good polls that a failed poll left unmeasured (never filled in)."""

    seconds: int


def _parts(last: SharePoll, new: SharePoll) -> Iterator[JobPart]:
    span = max(0, new.at - last.at)
    for instance_id, job in new.jobs.items():
        before = last.jobs.get(instance_id)
        if before is not None:
            yield JobPart(
                job, (before.cu + job.cu) / 2 * span, (before.memory + job.memory) / 2 * span
            )
        else:
            ran = new.at - min(new.at, max(job.running_at, last.at))
            yield JobPart(job, job.cu * ran, job.memory * ran)
    for instance_id in last.jobs.keys() - new.jobs.keys():
        job = last.jobs[instance_id]
        yield JobPart(job, job.cu * span / 2, job.memory * span / 2)


def consumption(last: SharePoll, new: SharePoll) -> Consumption:
    """Each job's share-seconds between ``last`` and ``new`` (see the module doc)."""
    span = max(0, new.at - last.at)
    gone = last.jobs.keys() - new.jobs.keys()
    bound = sum(last.jobs[instance_id].cu for instance_id in gone) * span / 2
    return Consumption(tuple(_parts(last, new)), bound)


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
