"""Warn once per episode: a condition lasting many polls is logged when it starts, not each time."""

from __future__ import annotations

from collections.abc import Hashable


class Episode:
    """Tracks which episode of a condition is current, so a caller warns only when one begins."""

    def __init__(self) -> None:
        self._current: Hashable | None = None

    def begins(self, key: Hashable) -> bool:
        """Enter the episode ``key``; True when it differs from the current one (a new episode)."""
        new = key != self._current
        self._current = key
        return new

    def ends(self) -> bool:
        """Leave the current episode; True when there was one (the condition has cleared)."""
        was = self._current is not None
        self._current = None
        return was
