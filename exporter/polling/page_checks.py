"""Pure checks of what a window read got: pages that contradict each other, or the read itself.

A page that lies about its slice, or two passes over one slice that differ, make the slice be
read again; slices that do not tile the window are a bug.
"""

from __future__ import annotations

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
        if strays(piece, page):
            return f"page {number} holds a job submitted outside the slice asked for"
    return None


def strays(piece: TimeSlice, page: Page) -> bool:
    """True if the page holds a job the slice's filter cannot have let through: a lie."""
    return any(not piece.contains(job.submitted_at) for job in page.jobs)


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
