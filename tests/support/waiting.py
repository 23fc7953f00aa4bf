"""Waiting on a condition instead of sleeping: as fast as the machine allows, as patient as a
busy machine needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    what: str, condition: Callable[[], T], timeout: float = 30, every: float = 0.05
) -> T:
    """The first true value ``condition()`` returns, asked every ``every`` seconds; an
    AssertionError naming ``what`` (and the last value) once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (last: {value!r})"
            )
        time.sleep(every)
