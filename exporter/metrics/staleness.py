"""The one staleness decision: whether a failing target's last good snapshot is still served.

Every reader of job series (the job collector, the per-job view, the renderer's cache) asks
``Staleness``; nothing else compares a snapshot's age with ``poll.max_staleness``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from exporter.config import Target
from exporter.polling.publish.snapshot import TargetStatus


def is_stale(status: TargetStatus, now: float, max_staleness: float) -> bool:
    """True when a down target's last good snapshot is too old to be served any more."""
    snapshot = status.snapshot
    return snapshot is not None and not status.up and now - snapshot.completed_at > max_staleness


@dataclass(frozen=True, slots=True)
class Staleness:
    """Decides which snapshots may be served now, given ``max_staleness`` and a clock.

    ``limits`` holds the targets whose own ``targets[].poll`` sets another limit.
    """

    max_staleness: float = math.inf
    clock: Callable[[], float] = time.time
    limits: Mapping[Target, float] = field(default_factory=dict)

    def limit(self, target: Target) -> float:
        return self.limits.get(target, self.max_staleness)

    def stale_flags(self, statuses: Iterable[TargetStatus]) -> tuple[bool, ...]:
        """Which of ``statuses`` are stale now (the renderer renders again when this changes)."""
        now = self.clock()
        return tuple(is_stale(status, now, self.limit(status.target)) for status in statuses)

    def served(self, statuses: Iterable[TargetStatus]) -> Iterator[TargetStatus]:
        """The statuses whose snapshot is served now: they have one, and it is not stale."""
        now = self.clock()
        for status in statuses:
            if status.snapshot is not None and not is_stale(status, now, self.limit(status.target)):
                yield status


# Served for ever: for collectors built without a staleness limit (tests, tools).
NEVER_STALE = Staleness()
