"""APScheduler runs each target's poll every interval, never two of one target at once."""

from __future__ import annotations

import asyncio
import time

from exporter.polling.schedule.scheduling import PollScheduler, ScheduledPoll
from tests.support.jobs import make_target


class SlowPoller:
    """Stands in for TargetPoller: each poll takes ``seconds``; records overlaps."""

    def __init__(self, seconds: float, region: str = "cn-hangzhou") -> None:
        self.target = make_target(region=region)
        self.seconds = seconds
        self.running = 0
        self.started: list[float] = []
        self.overlaps = 0

    async def poll(self) -> bool:
        self.running += 1
        self.overlaps += self.running > 1
        self.started.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        return True


async def test_first_poll_at_start_then_every_interval() -> None:
    fast = SlowPoller(0.01)
    scheduler = PollScheduler([fast], interval=0.2)
    began = asyncio.get_running_loop().time()
    scheduler.start()
    await asyncio.sleep(0.75)
    scheduler.shutdown()
    assert fast.started[0] - began < 0.15
    assert 3 <= len(fast.started) <= 5
    gaps = [b - a for a, b in zip(fast.started, fast.started[1:], strict=False)]
    # Every interval, give or take a loaded CI machine's scheduling delay.
    assert all(0.1 < gap < 0.45 for gap in gaps)


async def test_a_late_poll_is_never_overlapped_and_missed_runs_are_coalesced() -> None:
    slow = SlowPoller(0.5)
    other = SlowPoller(0.01, region="cn-shanghai")
    scheduler = PollScheduler([slow, other], interval=0.1)
    scheduler.start()
    await asyncio.sleep(1.25)
    scheduler.shutdown()
    assert slow.overlaps == 0
    # 1.25 s of 0.5 s polls: 3 at most, not the 12 the interval alone would queue.
    assert 2 <= len(slow.started) <= 3
    # The slow target does not hold up the other one.
    assert len(other.started) >= 8


async def test_polls_kept_by_a_reload_wait_for_their_turn_the_others_run_at_once() -> None:
    kept, changed = SlowPoller(0.01), SlowPoller(0.01, region="cn-shanghai")
    kept_quota, new_quota = SlowPoller(0.01), SlowPoller(0.01, region="cn-shanghai")
    soon = time.time() + 0.4  # one interval after their last poll ended
    scheduler = PollScheduler(
        [kept, changed],
        interval=60.0,
        others=[
            ScheduledPoll("kept quota", kept_quota.poll, 60.0, first_at=soon),
            ScheduledPoll("new quota", new_quota.poll, 60.0),
        ],
        first_poll_at=lambda target: soon if target == kept.target else None,
    )
    began = asyncio.get_running_loop().time()
    scheduler.start()
    await asyncio.sleep(0.2)
    assert (len(kept.started), len(kept_quota.started)) == (0, 0)
    assert (len(changed.started), len(new_quota.started)) == (1, 1)
    await asyncio.sleep(0.6)
    scheduler.shutdown()
    assert (len(kept.started), len(kept_quota.started)) == (1, 1)
    assert kept.started[0] - began >= 0.3 and kept_quota.started[0] - began >= 0.3
