"""Pure checks of what a window read got: pages that contradict each other, or the read itself.

A page that lies about its slice, or two passes over one slice that differ, make the slice be
read again; slices that do not tile the window are a bug.
"""

from __future__ import annotations

from dataclasses import replace

from exporter.api.pages import Page, TimeSlice
from exporter.api.wire import PAGE_SIZE


def expected_records(total: int, number: int) -> int:
    """How many records page ``number`` must hold when the list holds ``total``."""
    return max(0, min(PAGE_SIZE, total - PAGE_SIZE * (number - 1)))


def pages_needed(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def narrow_problem(piece: TimeSlice, total: int, pages: dict[int, Page]) -> str | None:
    """Why the pages of one pass over a slice do not form one list, or None."""
    for number, page in sorted(pages.items()):
        if page.total_count != total:
            return f"page {number} reports totalCount {page.total_count}, page 1 {total}"
        if page.records != expected_records(total, number):
            return f"page {number} holds {page.records} records of {total}"
    return None


def without_strays(piece: TimeSlice, page: Page) -> Page:
    """``page`` without the jobs the slice's filter cannot have let through, counted invalid.

    Such a record's submission time is wrong (a job's never changes), not the page: reading
    the slice again would get the same record, so it is skipped like any bad field.
    """
    kept = tuple(job for job in page.jobs if piece.contains(job.submitted_at))
    if len(kept) == len(page.jobs):
        return page
    return replace(page, jobs=kept, invalid=page.invalid + len(page.jobs) - len(kept))


def differ(first: dict[int, Page], second: dict[int, Page]) -> str | None:
    """Why two passes over the same slice disagree, or None when they are identical."""
    for number in sorted(first):
        before = [job.instance_id for job in first[number].jobs]
        after = [job.instance_id for job in second[number].jobs]
        if before != after or first[number].records != second[number].records:
            return f"page {number} changed between two reads"
    return None


def check_tiling(window: TimeSlice, pieces: list[TimeSlice]) -> None:
    """Raise unless ``pieces`` (sorted) cover ``window`` exactly, without gaps or overlaps."""
    expected = window.start
    for piece in pieces:
        if piece.start != expected:
            raise AssertionError(f"slices do not tile the window at {expected}")
        expected = piece.end + 1
    if expected != window.end + 1:
        raise AssertionError("slices do not reach the end of the window")
