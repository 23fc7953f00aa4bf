"""One dense slice: too narrow to cut by time, more than a page of jobs. Read in parts.

The slice is cut by quota and owner (``burst_parts``) from what the last poll saw in it and what
its first answer shows; with nothing seen yet, it is read whole both ways (``burst_read``), which
shows the next poll every quota and owner in it. Each part that fits a page is read by one
request, a part that does not both ways. The cut is complete when the parts' ``totalCount`` add
up to the slice's, counted just before or just after them (once more when jobs moved
meanwhile); otherwise the whole slice is read both ways and the jobs no part covers are added.
Never a failure: a part read both ways is published, counted as approximate when it moved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.burst_parts import Combination, combinations, plan_parts, unmatched
from exporter.polling.read.burst_read import PartRead, read_both_ways

GetFiltered = Callable[[TimeSlice, int, JobFilter], Awaitable[Page]]
Enqueue = Callable[[Callable[[], Awaitable[None]]], None]
Done = Callable[[list[PartRead]], None]


class DenseSliceRead:
    """Reads one dense slice through the reader's queue; calls ``done`` with its parts' reads."""

    def __init__(
        self,
        piece: TimeSlice,
        first: Page,
        seen: Counter[Combination],
        allowed: JobFilter,
        *,
        get: GetFiltered,
        enqueue: Enqueue,
        done: Done,
    ) -> None:
        self._piece = piece
        self._first = first
        self._seen = seen
        self._allowed = allowed
        self._get = get
        self._enqueue = enqueue
        self._done = done
        self._parts: list[JobFilter] = []
        self._reads: list[PartRead] = []
        self._totals: dict[JobFilter, int] = {}  # each part's latest totalCount
        self._before = first.total_count  # the slice's, just before its parts were counted
        self._counting = 0  # the slice's counts and the parts' first answers still to come
        self._reading = 0  # parts still being read
        self._recounted = False
        self._complete: bool | None = None  # whether the parts cover the slice, once known
        self._after = first

    def start(self) -> None:
        """Cut from what the last poll saw, or read the whole slice both ways when it saw
        nothing here (which shows every quota and owner in it to the next poll)."""
        if self._seen:
            self._cut(self._seen + combinations(self._first.jobs))
        else:
            self._enqueue(lambda: self._whole(self._first))

    def _cut(self, counts: Counter[Combination]) -> None:
        self._parts = plan_parts(counts, self._allowed)
        if len(self._parts) <= 1:  # one part is the whole slice, or less than it
            self._enqueue(lambda: self._whole(self._first))
            return
        self._reading = len(self._parts)
        self._wave(self._read_part)

    def _wave(self, part_step: Callable[[JobFilter], Awaitable[None]]) -> None:
        """The slice counted, then ``part_step`` for every part, then ``_count_after``."""
        self._counting = len(self._parts) + 1
        self._enqueue(self._count_before)
        for part in self._parts:
            self._enqueue(lambda part=part: part_step(part))

    async def _count_before(self) -> None:
        self._before = (await self._get(self._piece, 1, EVERY_JOB)).total_count
        self._counted()

    async def _read_part(self, part: JobFilter) -> None:
        page = await self._get(self._piece, 1, part)
        self._totals[part] = page.total_count
        self._counted()  # the check need not wait for the part's other pages
        if page.total_count <= PAGE_SIZE and page.records == page.total_count:
            self._reads.append(PartRead(part, page.jobs, page.invalid, page.total_count, True))
        else:
            self._reads.append(await read_both_ways(part, self._page_getter(part), page))
        self._reading -= 1
        self._finish()

    async def _count_part(self, part: JobFilter) -> None:
        self._totals[part] = (await self._get(self._piece, 1, part)).total_count
        self._counted()

    def _counted(self) -> None:
        self._counting -= 1
        if self._counting == 0:
            self._enqueue(self._count_after)

    async def _count_after(self) -> None:
        """The slice's count now; the cut is complete if its parts add up to it, or did before.

        Jobs moving between the counts can make them differ with nothing left out: they are
        counted once more, then what is left out is looked for.
        """
        page = await self._get(self._piece, 1, EVERY_JOB)
        if sum(self._totals.values()) in (self._before, page.total_count):
            self._complete = True
        elif page.total_count <= PAGE_SIZE and page.records == page.total_count:
            self._complete = True  # it shrank to one page: that page is the slice
            self._reads = [PartRead(EVERY_JOB, page.jobs, page.invalid, page.total_count, True)]
        elif not self._recounted:
            self._recounted = True
            self._wave(self._count_part)
            return
        else:
            self._complete = False
            self._after = page
        self._finish()

    def _finish(self) -> None:
        """Once every part is read and the cut checked: done, or the rest looked for."""
        if self._reading or self._complete is None:
            return
        if self._complete:
            self._done(self._reads)
        else:
            after = self._after
            self._enqueue(lambda: self._rest(after))

    async def _rest(self, first: Page) -> None:
        """Jobs of quotas or owners no part asked for: the whole slice both ways, minus parts."""
        whole = await read_both_ways(EVERY_JOB, self._page_getter(EVERY_JOB), first)
        rest = tuple(unmatched(whole.jobs, self._parts))
        invalid = max(0, whole.invalid - sum(read.invalid for read in self._reads))
        exact = whole.exact or not rest
        self._done([*self._reads, PartRead(EVERY_JOB, rest, invalid, len(rest), exact, True)])

    async def _whole(self, first: Page) -> None:
        whole = await read_both_ways(EVERY_JOB, self._page_getter(EVERY_JOB), first)
        self._done([whole])

    def _page_getter(self, part: JobFilter) -> Callable[[int], Awaitable[Page]]:
        return lambda number: self._get(self._piece, number, part)
