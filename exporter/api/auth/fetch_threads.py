"""Blocking credential fetches run on threads of their own, each within a total time limit.

The credential package does blocking HTTP; run on the event loop's default executor, a source
that trickles one byte every few seconds holds a worker past any poll, ``asyncio.run`` waits for
it at exit (SIGTERM and ``--once`` never return), and a few of them starve the name lookups that
share that executor. Here each fetch gets a daemon thread: the caller stops waiting after
``limit`` seconds, the process never waits for it at exit, and at most ``MAX_FETCH_THREADS``
exist at once, the abandoned ones included until they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")

# Fetches in flight (and abandoned ones not yet ended) across the whole process.
MAX_FETCH_THREADS = 8


class FetchLimitError(Exception):
    """A fetch that took longer than its limit, or found every thread taken by stuck ones."""


class FetchThreads:
    """Runs ``fetch`` on a daemon thread; ``run`` returns its result or raises within a limit."""

    def __init__(self, size: int = MAX_FETCH_THREADS) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._size = size

    async def run(self, fetch: Callable[[], Result], limit: float) -> Result:
        """``fetch()``'s result, its exception, or FetchLimitError after ``limit`` seconds."""
        if not self._slots.acquire(blocking=False):
            raise FetchLimitError(
                f"all {self._size} credential fetch threads are held by fetches still running"
            )
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Result] = loop.create_future()

        def deliver(result: Result | None, error: BaseException | None) -> None:
            if outcome.done():
                return  # abandoned: nobody waits for it any more
            if error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(result)  # type: ignore[arg-type]

        def work() -> None:
            try:
                result, error = fetch(), None
            except BaseException as failure:  # handed to the awaiting task, as to_thread does
                result, error = None, failure
            finally:
                self._slots.release()
            with contextlib.suppress(RuntimeError):  # the loop has closed: the process exits
                loop.call_soon_threadsafe(deliver, result, error)

        threading.Thread(target=work, name="credential-fetch", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(outcome), limit)
        except TimeoutError:
            raise FetchLimitError(f"no answer within {limit:g}s") from None
        finally:
            outcome.cancel()  # a late result is dropped, never reported unread


# One pool for the process: the bound is on threads, whoever asks.
FETCH_THREADS = FetchThreads()
