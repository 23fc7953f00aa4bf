"""One dense slice: too narrow to cut by time, more than a page of jobs. Read in parts.

The slice is cut by quota and owner (``burst_parts``) from what the last poll saw in it, or,
with nothing seen yet, from its first answer and a sample of its pages. Each part that fits a
page is read by one request; a part that does not is read both ways (``burst_read``). The cut
is complete when the parts' ``totalCount`` add up to the slice's, read just before or just
after them; otherwise the whole slice is read both ways and the jobs no part covers are added.
Never a failure: a part read both ways is published, counted as approximate when it moved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from exporter.api.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.api.wire import PAGE_SIZE
from exporter.polling.burst_parts import Combination, combinations, plan_parts, unmatched
from exporter.polling.burst_read import PartRead, read_both_ways
from exporter.polling.slices import sample_pages

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
        self._pending = 0

    def start(self) -> None:
        """Cut from what was seen, or sample the slice's pages first when nothing was.

        A first page of one quota and owner (a scheduler's burst, most often) is not sampled:
        the whole slice is read both ways, which shows every combination for the next poll.
        """
        if self._seen:
            self._cut(self._seen + combinations(self._first.jobs))
            return
        if len(combinations(self._first.jobs)) <= 1:
            self._enqueue(lambda: self._whole(self._first))
            return
        numbers = sample_pages(self._first.total_count)
        sampled = list(self._first.jobs)
        left = [len(numbers)]

        async def sample(number: int) -> None:
            sampled.extend((await self._get(self._piece, number, EVERY_JOB)).jobs)
            left[0] -= 1
            if left[0] == 0:
                self._cut(combinations(sampled, self._first.total_count / max(1, len(sampled))))

        for number in numbers:
            self._enqueue(lambda number=number: sample(number))
        if not numbers:
            self._cut(combinations(sampled, self._first.total_count / max(1, len(sampled))))

    def _cut(self, counts: Counter[Combination]) -> None:
        self._parts = plan_parts(counts, self._allowed)
        if len(self._parts) <= 1:  # one part is the whole slice, or less than it
            self._enqueue(lambda: self._whole(self._first))
            return
        self._pending = len(self._parts)
        for part in self._parts:
            self._enqueue(lambda part=part: self._read_part(part))

    async def _read_part(self, part: JobFilter) -> None:
        page = await self._get(self._piece, 1, part)
        if page.total_count <= PAGE_SIZE and page.records == page.total_count:
            self._reads.append(PartRead(part, page.jobs, page.invalid, page.total_count, True))
        else:
            self._reads.append(await read_both_ways(part, self._page_getter(part), page))
        self._pending -= 1
        if self._pending == 0:
            self._enqueue(self._check)

    async def _check(self) -> None:
        """The slice's count now; the cut is complete if its parts add up to it, or did before."""
        page = await self._get(self._piece, 1, EVERY_JOB)
        parts_total = sum(read.total for read in self._reads)
        if parts_total in (self._first.total_count, page.total_count):
            self._done(self._reads)
        elif page.total_count <= PAGE_SIZE and page.records == page.total_count:
            self._done([PartRead(EVERY_JOB, page.jobs, page.invalid, page.total_count, True)])
        else:
            await self._rest(page)

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
