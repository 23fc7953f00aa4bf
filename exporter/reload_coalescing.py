"""Reload requests that arrive together share one reload.

Sixteen clients posting ``/-/reload`` in a loop asked for 1 466 reloads a second. Here a request
waits for the reload that will start next and shares its answer: a reload already running read
the files before the request came, so it does not count, and every request is answered by a
reload that began after it arrived. However many ask, at most one reload runs and one waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class CoalescedReloads:
    """Calls ``reload`` on behalf of every concurrent caller, at most once running, once queued."""

    def __init__(self, reload: Callable[[], Awaitable[str | None]]) -> None:
        self._reload = reload
        self._lock = asyncio.Lock()
        self._queued: asyncio.Task[str | None] | None = None
        # How many reloads actually ran (the rest were shared).
        self.runs = 0

    async def __call__(self) -> str | None:
        """The answer of the next reload to start: None on success, else its error line."""
        if self._queued is None:
            self._queued = asyncio.get_running_loop().create_task(self._run_queued())
        # Shielded: a caller that gives up (a client gone, a timeout) leaves the others' reload.
        return await asyncio.shield(self._queued)

    async def _run_queued(self) -> str | None:
        async with self._lock:
            # From here on this reload reads the files: a newcomer queues the next one.
            self._queued = None
            self.runs += 1
            return await self._reload()
