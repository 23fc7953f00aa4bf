"""APScheduler runs each target's poll every ``interval``, the first one at start.

``max_instances=1`` keeps two polls of one target from overlapping; ``coalesce`` turns runs
missed while a poll was late into a single run instead of a queue of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exporter.config import Target
from exporter.polling.schedule.poller import TargetPoller

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.scheduling")


@dataclass(frozen=True, slots=True)
class ScheduledPoll:
    """A poll beside the running-jobs one (a quota poll's part): what to run, how often."""

    name: str
    run: Callable[[], Awaitable[object]]
    interval: float
    # When the first run is due (Unix seconds), if not at once: a quota poll a reload left
    # unchanged keeps its schedule, as a target's running-jobs poll does.
    first_at: float | None = None


async def run_poll(poller: TargetPoller, in_flight: set[asyncio.Task] | None = None) -> None:
    await run_guarded(poller.poll, poller.target.name, in_flight)


async def run_guarded(
    poll: Callable[[], Awaitable[object]], name: str, in_flight: set[asyncio.Task] | None = None
) -> None:
    task = asyncio.current_task()
    if in_flight is not None and task is not None:
        in_flight.add(task)
    try:
        await poll()
    except asyncio.CancelledError:
        # Shutdown cancels polls in flight; that is not an error worth a traceback.
        log.debug("poll cancelled", extra={"target": name})
    finally:
        if in_flight is not None:
            in_flight.discard(task)


class PollScheduler:
    """Runs each poller every interval on APScheduler, never two polls of a target at once;
    ``others`` (the quota poll's parts) each on their own interval, alike.

    Each target is a job of its own, on its own interval (``interval_of``, else ``interval``):
    a target that hangs until its deadline delays no other, as they share only the event loop.
    """

    def __init__(
        self,
        pollers: Sequence[TargetPoller],
        interval: float,
        others: Sequence[ScheduledPoll] = (),
        interval_of: Callable[[Target], float] | None = None,
        first_poll_at: Callable[[Target], float | None] | None = None,
    ) -> None:
        """``first_poll_at``: when a target's first poll is due (Unix seconds), if not at once:
        a target a reload left unchanged keeps its schedule."""
        self._in_flight: set[asyncio.Task] = set()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for index, poller in enumerate(pollers):
            every = interval_of(poller.target) if interval_of is not None else interval
            due = first_poll_at(poller.target) if first_poll_at is not None else None
            first = now if due is None else max(now, datetime.fromtimestamp(due, UTC))
            self._add(index, poller, every, first)
        for index, other in enumerate(others):
            due = other.first_at
            self._scheduler.add_job(
                run_guarded,
                IntervalTrigger(seconds=other.interval, timezone=UTC),
                id=f"other-{index}-{other.name}",
                name=other.name,
                next_run_time=now if due is None else max(now, datetime.fromtimestamp(due, UTC)),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(other.interval)),
                args=(other.run, other.name, self._in_flight),
            )

    def _add(self, index: int, poller: TargetPoller, interval: float, first: datetime) -> None:
        self._scheduler.add_job(
            run_poll,
            IntervalTrigger(seconds=interval, timezone=UTC),
            id=f"poll-{index}-{poller.target.name}",
            name=f"poll {poller.target.name}",
            next_run_time=first,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval)),
            args=(poller, self._in_flight),
        )

    def start(self) -> None:
        """Start polling; must be called from within the running event loop."""
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def stop(self) -> None:
        """Stop scheduling and cancel this scheduler's polls in flight (a reload replaces it)."""
        self.shutdown()
        polls = list(self._in_flight)
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
