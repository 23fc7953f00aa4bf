"""Staleness: the one decision whether a failing target's last good snapshot is still served."""

from __future__ import annotations

import math

from exporter.metrics.staleness import Staleness
from exporter.polling.publish.snapshot import Snapshot, TargetStatus
from tests.support.jobs import NOW, make_target

UP = make_target(labels=(("account", "up"),))
DOWN_RECENT = make_target(labels=(("account", "recent"),))
DOWN_OLD = make_target(labels=(("account", "old"),))
NEVER = make_target(labels=(("account", "never"),))


def status(target, *, up: bool, age: float | None) -> TargetStatus:
    """A target's status whose last good snapshot completed ``age`` seconds before NOW."""
    if age is None:
        return TargetStatus(target, up=up)
    snapshot = Snapshot({}, 0, completed_at=NOW - age)
    return TargetStatus(target, up=up, last_success=NOW - age, snapshot=snapshot)


STATUSES = (
    status(UP, up=True, age=500.0),  # up: served whatever its age
    status(DOWN_RECENT, up=False, age=180.0),  # down, exactly at the limit: still served
    status(DOWN_OLD, up=False, age=180.5),  # down, past the limit: dropped
    status(NEVER, up=False, age=None),  # never had a good poll: nothing to serve
)


def test_a_down_target_is_served_up_to_max_staleness_and_dropped_after() -> None:
    staleness = Staleness(max_staleness=180.0, clock=lambda: NOW)
    assert [s.target for s in staleness.served(STATUSES)] == [UP, DOWN_RECENT]
    assert staleness.stale_flags(STATUSES) == (False, False, True, False)


def test_without_a_limit_nothing_is_stale() -> None:
    staleness = Staleness(max_staleness=math.inf, clock=lambda: NOW + 10**9)
    assert [s.target for s in staleness.served(STATUSES)] == [UP, DOWN_RECENT, DOWN_OLD]
    assert staleness.stale_flags(STATUSES) == (False, False, False, False)


def test_the_decision_moves_with_the_clock() -> None:
    now = [NOW - 100.0]
    staleness = Staleness(max_staleness=180.0, clock=lambda: now[0])
    assert staleness.stale_flags(STATUSES) == (False, False, False, False)
    now[0] = NOW + 1000.0
    assert staleness.stale_flags(STATUSES) == (False, True, True, False)
