"""The published result of each target's polls: swapped whole, never changed in place.

A reader (a scrape) takes ``SnapshotStore.statuses()`` once and sees, for every target, the
result of one complete poll or of the one before it: never a mix, never a partial poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from exporter.api.wire.jobs import RunningJob
from exporter.config import Target
from exporter.polling.derive.aggregation import GroupAggregate, GroupKey
from exporter.polling.derive.run_times import RunTimes

log = logging.getLogger("exporter.poller")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The aggregates of one complete, successful poll."""

    groups: Mapping[GroupKey, GroupAggregate]
    jobs: int
    completed_at: float
    # The per-job view's jobs (empty when it is off), see ``exporter.polling.derive.top_jobs``.
    top_jobs: tuple[RunningJob, ...] = ()
    # Per quota, how long its running jobs had run at the poll, see ``polling.run_times``.
    run_times: Mapping[str, RunTimes] = field(default_factory=dict)
    # Projects summed into project="__other__" (metrics.max_projects_per_quota).
    folded_projects: int = 0


@dataclass(frozen=True, slots=True)
class PollFailure:
    """Why the last failed poll failed, for people (the landing page and ``/ready``)."""

    reason: str
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """One target's published state: up or not, its last good snapshot, its last failure."""

    target: Target
    up: bool = False
    last_success: float | None = None
    snapshot: Snapshot | None = None
    # Kept after a recovery, so the page can say what went wrong last and when.
    last_failure: PollFailure | None = None
    # When the last poll, good or failed, was published.
    last_poll: float | None = None


class SnapshotStore:
    """Each target's latest status; ``generation`` changes whenever any of them does."""

    def __init__(
        self, targets: tuple[Target, ...], carried: Mapping[Target, TargetStatus] | None = None
    ) -> None:
        """``carried``: statuses a reload keeps (of the targets it left unchanged)."""
        carried = carried or {}
        self._lock = threading.Lock()
        self._statuses: Mapping[Target, TargetStatus] = MappingProxyType(
            {target: carried.get(target) or TargetStatus(target) for target in targets}
        )
        self._generation = 0
        self._on_success: list[Callable[[TargetStatus], None]] = []

    def on_success(self, listener: Callable[[TargetStatus], None]) -> None:
        """Call ``listener`` with each good status about to be published (e.g. to render it):
        a reader that sees the new generation finds it already rendered."""
        self._on_success.append(listener)

    @property
    def generation(self) -> int:
        """Changes whenever a status is published: a reader's cue to render again."""
        return self._generation

    def statuses(self) -> tuple[TargetStatus, ...]:
        return tuple(self._statuses.values())

    def status(self, target: Target) -> TargetStatus:
        return self._statuses[target]

    @property
    def ready(self) -> bool:
        """True once every target has had a good poll."""
        return all(status.last_success is not None for status in self._statuses.values())

    def _swap(self, target: Target, status: TargetStatus) -> None:
        with self._lock:
            statuses = dict(self._statuses)
            statuses[target] = status
            self._statuses = MappingProxyType(statuses)
            self._generation += 1

    def publish_success(self, target: Target, snapshot: Snapshot) -> None:
        previous = self._statuses[target]
        status = TargetStatus(
            target,
            True,
            snapshot.completed_at,
            snapshot,
            last_failure=previous.last_failure,
            last_poll=snapshot.completed_at,
        )
        # Before the swap: a scrape that sees the new generation must not render it itself.
        for listener in self._on_success:
            try:
                listener(status)
            except Exception:
                # What a listener does with a status never undoes its publication.
                log.exception("a listener of published snapshots failed")
        self._swap(target, status)

    def publish_failure(self, target: Target, failure: PollFailure | None = None) -> None:
        """Mark the target down; its last good snapshot stays until a policy drops it."""
        status = self._statuses[target]
        if failure is None:
            self._swap(target, replace(status, up=False))
        else:
            self._swap(
                target, replace(status, up=False, last_failure=failure, last_poll=failure.at)
            )
