"""Pure checks of what a window read got: pages that contradict each other, or the read itself.

A page that contradicts its own ``totalCount`` makes the slice be read again; a record outside
the slice asked for is skipped; slices that do not tile the window are a bug.
"""

from __future__ import annotations

from dataclasses import replace

from exporter.api.wire.pages import Page, TimeSlice
from exporter.api.wire.running_jobs import PAGE_SIZE


def expected_records(total: int, number: int) -> int:
    """How many records page ``number`` must hold when the list holds ``total``."""
    return max(0, min(PAGE_SIZE, total - PAGE_SIZE * (number - 1)))


def pages_needed(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def without_strays(piece: TimeSlice, page: Page) -> Page:
    """``page`` without the jobs the slice's filter cannot have let through, counted invalid.

    Such a record's submission time is wrong (a job's never changes), not the page: reading
    the slice again would get the same record, so it is skipped like any bad field.
    """
    kept = tuple(job for job in page.jobs if piece.contains(job.submitted_at))
    if len(kept) == len(page.jobs):
        return page
    return replace(page, jobs=kept, invalid=page.invalid + len(page.jobs) - len(kept))


def check_tiling(window: TimeSlice, pieces: list[TimeSlice]) -> None:
    """Raise unless ``pieces`` (sorted) cover ``window`` exactly, without gaps or overlaps."""
    expected = window.start
    for piece in pieces:
        if piece.start != expected:
            raise AssertionError(f"slices do not tile the window at {expected}")
        expected = piece.end + 1
    if expected != window.end + 1:
        raise AssertionError("slices do not reach the end of the window")
