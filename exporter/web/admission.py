"""Which connections the server holds: at most ``max_connections``, and who gives way to whom.

When ``max_connections`` are open, a new connection takes the place of a waiting one: first
of one waiting ``stalled_after`` or more for its request (half-open, slow) or idle after one
(kept alive: closed cleanly between requests, as HTTP lets a server do), longest first; else
the oldest without a request; else the longest idle. A connection mid-request, or connected
less than ``request_grace`` ago (its request may be on its way), is never taken, nor, while
such a new one is there, one kept alive and used within ``stalled_after``. When none can be
taken, the newcomer waits up to ``admission_wait`` for one to finish its request, to close
or to leave its grace, and takes its place then; it is closed only after that. When
``max_connections`` newcomers already wait (a flood), a newcomer takes the oldest new one at
once, graced or not, or is closed. So neither half-open floods nor kept-alive probers that
are all mid-request at one instant keep a fresh scrape out, and a connection used within
``stalled_after`` is taken last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

# The server's logger: these lines are part of what it logs about its connections.
log = logging.getLogger("exporter.httpserver")


@dataclass(eq=False, slots=True)
class Connection:
    """One client connection as the limits see it: its state and since when it waits."""

    writer: asyncio.StreamWriter
    # "new" until a whole request has arrived; then "busy" or "idle" (kept alive).
    state: str = "new"
    peer: str = field(default="")
    # Since when it has been waiting (time.monotonic()): for its request, or idle after one.
    since: float = field(default_factory=time.monotonic)


class ConnectionSlots:
    """The open connections, at most ``max_connections``; newcomers admitted as the module says."""

    def __init__(
        self,
        max_connections: int,
        stalled_after: float,
        admission_wait: float,
        request_grace: float = 0.25,
    ) -> None:
        self.max_connections = max_connections
        self._stalled_after = stalled_after
        self._request_grace = request_grace
        self._admission_wait = admission_wait
        self._open: OrderedDict[Connection, None] = OrderedDict()
        # Newcomers waiting for a connection to finish its request, first come first served.
        self._waiting: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._open)

    def connections(self) -> list[Connection]:
        return list(self._open)

    async def admit(self, connection: Connection) -> bool:
        """True once ``connection`` holds a place; False if it must be closed unserved."""
        if self._try_admit(connection):
            return True
        if len(self._waiting) >= self.max_connections:
            # A flood: as many wait as may be open. Take the oldest new one, graced or not.
            return self._try_admit(connection, flooded=True)
        deadline = time.monotonic() + self._admission_wait
        loop = asyncio.get_running_loop()
        first = True
        while (left := deadline - time.monotonic()) > 0:
            turn: asyncio.Future[None] = loop.create_future()
            # Woken but overtaken (a place went to a newcomer that needed no wait): still first.
            if first:
                self._waiting.append(turn)
            else:
                self._waiting.appendleft(turn)
            first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(turn, min(left, self._until_evictable()))
            if turn in self._waiting:
                self._waiting.remove(turn)
            if self._try_admit(connection):
                return True
        return False

    def finished_request(self, connection: Connection) -> None:
        """``connection`` answered its request and waits for the next: a waiter may take it."""
        connection.state = "idle"
        connection.since = time.monotonic()
        self._wake_one()

    def release(self, connection: Connection) -> None:
        """``connection`` ended: its place is free."""
        if connection in self._open:
            del self._open[connection]
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def _try_admit(self, connection: Connection, flooded: bool = False) -> bool:
        if len(self._open) >= self.max_connections:
            evicted = self._evictable(flooded)
            if evicted is None:
                return False
            self._open.pop(evicted, None)
            if evicted.state == "new":
                log.debug("connection limit reached: dropping the oldest one before its request")
                evicted.writer.transport.abort()
            else:
                log.debug("connection limit reached: closing the longest-idle kept-alive one")
                evicted.writer.transport.close()
        # Its header timeout and its rank start now, not when it began to wait.
        connection.since = time.monotonic()
        self._open[connection] = None
        return True

    def _evictable(self, flooded: bool = False) -> Connection | None:
        """The waiting connection to close for a newcomer (see the module's docstring)."""
        now = time.monotonic()
        stalled = now - self._stalled_after
        fresh = math.inf if flooded else now - self._request_grace

        def rank(c: Connection) -> tuple[int, float]:
            young = c.since > stalled
            return (2 * young + (c.state == "idle"), c.since)

        graced = {c for c in self._open if c.state == "new" and c.since > fresh}
        waiting = [c for c in self._open if c.state != "busy" and c not in graced]
        best = min(waiting, key=rank) if waiting else None
        if best is not None and graced and rank(best)[0] == 3:
            # A kept-alive connection used just now is taken last: the graced ones may turn
            # out half-open first.
            return None
        return best

    def _until_evictable(self) -> float:
        """Seconds until the first connection that is new now leaves its request grace."""
        news = [c.since for c in self._open if c.state == "new"]
        return max(0.0, min(news) + self._request_grace - time.monotonic()) if news else math.inf
