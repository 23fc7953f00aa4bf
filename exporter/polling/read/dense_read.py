"""One dense slice: too narrow to cut by time, more than a page of jobs. Read in parts.

The slice is cut by quota and owner (``burst_parts``) from what the last poll saw in it and what
its first answer shows; with nothing seen yet (the first poll), from pages sampled across it,
asked for together. Each part that fits a page is read by one request, a part no filter splits
both ways (``burst_read``); parts are read concurrently. The cut is complete when the parts'
``totalCount`` add up to the slice's, counted just before or just after them (once more when
jobs moved meanwhile); otherwise every page of the slice is asked for at once and the jobs no
part covers are added, those its count says but no answer showed counted as unseen. A part read
both ways is published, counted as approximate when it moved.

Parts whose counts add up to more than the slice holds (a service that ignores the filters)
fail the read as ``inconsistent`` once their first answers show it: nothing can bound them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from exporter.api.errors import ApiError
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.burst_parts import Combination, combinations, plan_parts, unmatched
from exporter.polling.read.burst_read import PartRead, read_both_ways
from exporter.polling.read.slices import sample_pages

# Pages of a dense second never seen before sampled for its quotas and owners: enough that a
# combination holding 1 % of the second is all but certainly seen (1 - e^-13 at 64 pages).
SURVEY_PAGES = 64
# Pages looked through for what no part covers, when the parts do not add up: under churn the
# counts of 100 parts taken at different times rarely add up exactly, and reading all 250
# pages of a 5 000-job second on every poll for it cost more than the parts themselves.
REST_PAGES = 16

GetFiltered = Callable[[TimeSlice, int, JobFilter], Awaitable[Page]]
Enqueue = Callable[[Callable[[], Awaitable[None]]], None]
Done = Callable[[list[PartRead]], None]
Learned = Callable[[Counter[Combination]], None]


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
        learned: Learned = lambda counts: None,
    ) -> None:
        self._piece = piece
        self._first = first
        self._seen = seen
        self._allowed = allowed
        self._get = get
        self._enqueue = enqueue
        self._done = done
        self._learned = learned  # told the make-up a cut is made from, kept if the poll fails
        self._parts: list[JobFilter] = []
        self._reads: list[PartRead] = []
        self._totals: dict[JobFilter, int] = {}  # each part's latest totalCount
        self._before = first.total_count  # the slice's, just before its parts were counted
        self._counting = 0  # the slice's counts and the parts' first answers still to come
        self._reading = 0  # parts still being read
        self._recounted = False
        self._complete: bool | None = None  # whether the parts cover the slice, once known
        self._after = first
        self._most = first.total_count  # the most jobs a count of the slice said

    def start(self) -> None:
        """Cut from what the last poll saw, or from pages sampled across the slice when it saw
        nothing here (the first poll)."""
        if self._seen:
            self._cut(self._seen + combinations(self._first.jobs))
            return
        numbers = sample_pages(self._first.total_count, SURVEY_PAGES)
        sampled = [self._first]

        async def sample(number: int) -> None:
            sampled.append(await self._get(self._piece, number, EVERY_JOB))
            if len(sampled) == len(numbers) + 1:
                jobs = [job for page in sampled for job in page.jobs]
                self._cut(combinations(jobs, self._first.total_count / max(1, len(jobs))))

        for number in numbers:
            self._enqueue(lambda number=number: sample(number))
        if not numbers:
            self._cut(combinations(self._first.jobs))

    def _cut(self, counts: Counter[Combination]) -> None:
        self._learned(counts)
        self._parts = plan_parts(counts, self._allowed)
        if len(self._parts) <= 1:  # one part is the whole slice, or less than it
            self._enqueue(lambda: self._whole(self._first))
            return
        self._reading = len(self._parts)
        self._wave(self._read_part, count=False)

    def _wave(self, part_step: Callable[[JobFilter], Awaitable[None]], count: bool) -> None:
        """The slice counted (unless its first page, just read, is that count), then
        ``part_step`` for every part, then the check of their counts."""
        self._counting = len(self._parts) + count
        if count:
            self._enqueue(self._count_before)
        for part in self._parts:
            self._enqueue(lambda part=part: part_step(part))

    async def _count_before(self) -> None:
        self._before = (await self._get(self._piece, 1, EVERY_JOB)).total_count
        self._most = max(self._most, self._before)
        self._counted()

    def _part_counted(self, part: JobFilter, total: int) -> None:
        """Record a part's count; raise ``inconsistent`` when the parts overfill the slice."""
        self._totals[part] = total
        parts_hold = sum(self._totals.values())
        room = self._most + max(PAGE_SIZE, self._most // 10)  # jobs that started meanwhile
        if parts_hold > room:
            raise ApiError(
                "inconsistent",
                f"parts of the dense second [{self._piece.start}, {self._piece.end}] count "
                f"{parts_hold} jobs, the second {self._most}: the service does not apply "
                "quotaNicknameList/jobOwnerList",
            )

    async def _read_part(self, part: JobFilter) -> None:
        page = await self._get(self._piece, 1, part)
        self._part_counted(part, page.total_count)
        self._counted()  # the check need not wait for the part's other pages
        if page.total_count <= PAGE_SIZE and page.records == page.total_count:
            self._reads.append(PartRead(part, page.jobs, page.invalid, page.total_count, True))
        else:
            self._reads.append(await read_both_ways(part, self._page_getter(part), page))
        self._reading -= 1
        self._finish()

    async def _count_part(self, part: JobFilter) -> None:
        self._part_counted(part, (await self._get(self._piece, 1, part)).total_count)
        self._counted()

    def _counted(self) -> None:
        """Once the slice and every part are counted: complete if the parts add up to the
        slice's count before them, else the slice is counted again after them."""
        self._counting -= 1
        if self._counting:
            return
        if sum(self._totals.values()) == self._before:
            self._complete = True
            self._finish()
        else:
            self._enqueue(self._count_after)

    async def _count_after(self) -> None:
        """The slice's count now; the cut is complete if its parts add up to it, or did before.

        Jobs moving between the counts can make them differ with nothing left out: they are
        counted once more, then what is left out is looked for.
        """
        page = await self._get(self._piece, 1, EVERY_JOB)
        self._most = max(self._most, page.total_count)
        if sum(self._totals.values()) in (self._before, page.total_count):
            self._complete = True
        elif page.total_count <= PAGE_SIZE and page.records == page.total_count:
            self._complete = True  # it shrank to one page: that page is the slice
            self._reads = [PartRead(EVERY_JOB, page.jobs, page.invalid, page.total_count, True)]
        elif not self._recounted and len(self._parts) <= REST_PAGES:
            # Counting few parts again costs less than looking through pages for the rest.
            self._recounted = True
            self._wave(self._count_part, count=True)
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
            self._rest(self._after)

    def _rest(self, first: Page) -> None:
        """Jobs of quotas or owners no part asked for: pages of the slice (every one, up to
        ``REST_PAGES``, else that many across it), asked for at once, less the parts' jobs.
        What the counts say they hold beyond the jobs found is unseen; the next poll's cut
        names what was found."""
        pages = [first]
        numbers = sample_pages(first.total_count, REST_PAGES)

        async def page(number: int) -> None:
            pages.append(await self._get(self._piece, number, EVERY_JOB))
            if len(pages) == len(numbers) + 1:
                self._rest_found(first.total_count, pages)

        for number in numbers:
            self._enqueue(lambda number=number: page(number))
        if not numbers:
            self._rest_found(first.total_count, pages)

    def _rest_found(self, total: int, pages: list[Page]) -> None:
        found = {job.instance_id: job for page in pages for job in page.jobs}
        rest = tuple(unmatched(found.values(), self._parts))
        invalid = max(0, sum(page.invalid for page in pages) - sum(r.invalid for r in self._reads))
        missing = max(0, total - sum(self._totals.values()))  # what the counts say no part holds
        unseen = max(0, missing - len(rest) - invalid)
        exact = len(rest) + invalid == missing  # the jobs found are those the counts said
        read = PartRead(EVERY_JOB, rest, invalid, missing, exact, True, unseen)
        self._done([*self._reads, read])

    async def _whole(self, first: Page) -> None:
        whole = await read_both_ways(EVERY_JOB, self._page_getter(EVERY_JOB), first)
        self._done([whole])

    def _page_getter(self, part: JobFilter) -> Callable[[int], Awaitable[Page]]:
        return lambda number: self._get(self._piece, number, part)
