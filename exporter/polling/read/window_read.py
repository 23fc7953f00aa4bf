"""One consistent read of a poll's window, as disjoint slices of submission time.

Each slice is read atomically by one request when its jobs fit in a page. A slice that holds
more than a page is cut, at estimated counts when pages were sampled, and its parts are read in
turn. A slice too narrow to cut (a dense second) is read in parts by quota and owner, each part
atomically where it fits a page and both ways where it does not (``dense_read``): never a
failure, its error bounded by the changes during that part's read. A job seen in two slices, or
a page that contradicts its own ``totalCount``, makes those slices be read again.

Work is a queue pulled by ``concurrency`` workers: nothing is created per page up front, and a
poll never starts more than ``request_cap`` requests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from exporter.api.errors import ApiError
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.burst_parts import Combination
from exporter.polling.read.burst_read import PartRead
from exporter.polling.read.dense_read import DenseSliceRead
from exporter.polling.read.page_checks import (
    check_tiling,
    expected_records,
    pages_needed,
    without_strays,
)
from exporter.polling.read.read_order import longest_first
from exporter.polling.read.read_result import SliceRead, UnsurePart, WindowRead
from exporter.polling.read.slices import (
    estimate_points,
    sample_pages,
    split_by_estimate,
)

# A slice whose reads keep contradicting each other is read this many times before the poll fails.
MAX_SLICE_ATTEMPTS = 4


# ``fetch(piece, number)``; ``fetch(piece, number, part, ahead=True)`` for a dense second, whose
# requests go ahead of the others waiting for a place in flight, as its steps do in the queue.
FetchPage = Callable[..., Awaitable[Page]]


class WindowReader:
    """Reads one window; one instance per poll. ``read()`` raises ``ApiError`` on failure.

    ``seen`` holds, per dense second of the last poll, its jobs by (quota, owner): where a dense
    second is cut. ``allowed`` is the target's own filter, which every cut stays within.
    """

    def __init__(
        self,
        fetch: FetchPage,
        *,
        concurrency: int,
        request_cap: int,
        seen: Mapping[int, Counter[Combination]] | None = None,
        allowed: JobFilter = EVERY_JOB,
    ) -> None:
        self._fetch = fetch
        self._seen = seen or {}
        self._allowed = allowed
        self._concurrency = concurrency
        self._request_cap = request_cap
        # (0 for a dense second's steps, else 1; order of arrival; the step): a dense second's
        # counts and parts are asked for together, before what was queued, so little moves
        # between the counts that must add up.
        self._queue: asyncio.PriorityQueue[tuple[int, int, Callable[[], Awaitable[None]]]] = (
            asyncio.PriorityQueue()
        )
        self._arrivals = 0
        self._done: dict[TimeSlice, SliceRead] = {}
        self._owner: dict[str, TimeSlice] = {}
        self._submitted: dict[str, int] = {}
        self._attempts: Counter[TimeSlice] = Counter()
        self._started = 0
        self._requests = 0
        self._rereads = 0
        self._survey = False
        self._pieces: set[TimeSlice] = set()
        self._learned: dict[int, Counter[Combination]] = {}

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._requests

    @property
    def rereads(self) -> int:
        return self._rereads

    @property
    def pieces(self) -> list[TimeSlice]:
        """The slices the window is cut into so far (read, pending or being cut): they tile it.

        What a read that did not finish has learned of where the jobs are.
        """
        return sorted(self._pieces)

    @property
    def learned(self) -> dict[int, Counter[Combination]]:
        """Per dense slice cut so far (by its first second), its jobs by (quota, owner) as
        seen or sampled: what a read that did not finish learned of how to cut it."""
        return dict(self._learned)

    async def read(self, window: TimeSlice, plan: list[TimeSlice]) -> WindowRead:
        """Every slice of ``plan`` (which must tile ``window``), read consistently."""
        self._pieces = set(plan)
        # The first poll's single slice is a survey, not a plan that turned out too small.
        self._survey = plan == [window]
        for piece in longest_first(plan, self._seen):
            self._enqueue(lambda piece=piece: self._read_slice(piece, grew=False))
        try:
            async with asyncio.TaskGroup() as group:
                workers = [group.create_task(self._work()) for _ in range(self._concurrency)]
                await self._queue.join()
                for worker in workers:
                    worker.cancel()
        except* ApiError as failures:
            raise failures.exceptions[0] from None
        slices = tuple(sorted(self._done.values(), key=lambda read: read.piece))
        check_tiling(window, [read.piece for read in slices])
        return WindowRead(window, slices, self._requests, self._rereads)

    async def _work(self) -> None:
        while True:
            _, _, item = await self._queue.get()
            try:
                await item()
            finally:
                self._queue.task_done()

    async def _get(self, piece: TimeSlice, number: int, part: JobFilter | None = None) -> Page:
        if self._started >= self._request_cap:
            raise too_many_jobs(self._request_cap)
        self._started += 1
        if part is None:
            page = await self._fetch(piece, number)
        else:  # a dense second's (``part`` may be all of it)
            page = await self._fetch(piece, number, part, ahead=True)
        self._requests += page.requests
        return without_strays(piece, page)

    def _contradicts(self, piece: TimeSlice, pages: list[Page]) -> bool:
        """True if a job on ``pages`` was reported elsewhere with another submission time.

        A job's submission time never changes, so its id in two slices is a defect of an
        answer: this slice is read again, and so is the other one if it was already taken.
        """
        clash = False
        for job in (job for page in pages for job in page.jobs):
            first = self._submitted.setdefault(job.instance_id, job.submitted_at)
            if first != job.submitted_at:
                clash = True
                # Whichever answer lied, the next reads of both slices settle it.
                self._submitted[job.instance_id] = job.submitted_at
                owner = self._owner.get(job.instance_id)
                if owner is not None and owner != piece:
                    self._forget(owner)
                    self._again(owner, "an instanceId seen in two slices")
        return clash

    def _enqueue(self, item: Callable[[], Awaitable[None]], *, urgent: bool = False) -> None:
        self._arrivals += 1
        self._queue.put_nowait((0 if urgent else 1, self._arrivals, item))

    async def _read_slice(self, piece: TimeSlice, grew: bool) -> None:
        page = await self._get(piece, 1)
        total = page.total_count
        if page.records != expected_records(total, 1):
            self._again(piece, f"page holds {page.records} records, totalCount says {total}")
        elif self._contradicts(piece, [page]):
            self._again(piece, "an instanceId seen in two slices")
        elif total <= PAGE_SIZE:
            self._accept(piece, [page], grew)
        else:
            if self._started + pages_needed(total) > self._request_cap:
                raise too_many_jobs(self._request_cap, total)
            grew = grew or not self._survey
            if piece.splittable:
                await self._split(piece, total, page, grew)
            else:
                self._read_dense(piece, page, grew)

    async def _split(self, piece: TimeSlice, total: int, first: Page, grew: bool) -> None:
        """Cut an overfull slice where sampled pages say its jobs are, then read the parts."""
        sampled = [(1, first.submitted)]
        numbers = sample_pages(total)
        if not numbers:
            self._read_parts(piece, total, sampled, grew)
            return
        left = [len(numbers)]

        async def sample(number: int) -> None:
            sampled.append((number, (await self._get(piece, number)).submitted))
            left[0] -= 1
            if left[0] == 0:
                self._read_parts(piece, total, sampled, grew)

        for number in numbers:
            self._enqueue(lambda number=number: sample(number))

    def _read_parts(
        self, piece: TimeSlice, total: int, sampled: list[tuple[int, list[int]]], grew: bool
    ) -> None:
        points = estimate_points(piece, total, sorted(sampled))
        parts = split_by_estimate(piece, total, points)
        self._pieces.discard(piece)
        self._pieces.update(parts)
        for part in parts:
            self._enqueue(lambda part=part: self._read_slice(part, grew))

    def _read_dense(self, piece: TimeSlice, first: Page, grew: bool) -> None:
        seen: Counter[Combination] = Counter()
        for second in range(piece.start, piece.end + 1):
            seen.update(self._seen.get(second, {}))
        DenseSliceRead(
            piece,
            first,
            seen,
            self._allowed,
            get=self._get,
            enqueue=lambda item: self._enqueue(item, urgent=True),
            done=lambda reads: self._accept_dense(piece, reads, grew),
            learned=lambda counts: self._learned.__setitem__(piece.start, counts),
        ).start()

    def _accept_dense(self, piece: TimeSlice, reads: list[PartRead], grew: bool) -> None:
        pages = [Page(read.total, read.jobs, len(read.jobs), read.invalid) for read in reads]
        if self._contradicts(piece, pages):
            self._again(piece, "an instanceId seen in two slices")
            return
        moved = [read for read in reads if not read.exact]
        unsure = tuple(UnsurePart(piece, read.part, read.unseen) for read in reads if read.unseen)
        self._accept(
            piece,
            pages,
            grew,
            approximate=sum(len(read.jobs) for read in moved),
            approximate_parts=len(moved),
            unsure=unsure,
        )

    def _again(self, piece: TimeSlice, why: str) -> None:
        """Read ``piece`` again from scratch, or fail the poll if it keeps contradicting itself."""
        self._attempts[piece] += 1
        if self._attempts[piece] >= MAX_SLICE_ATTEMPTS:
            raise ApiError(
                "inconsistent",
                f"slice [{piece.start}, {piece.end}] read {MAX_SLICE_ATTEMPTS} times without "
                f"a consistent answer: {why}",
            )
        self._rereads += 1
        self._enqueue(lambda: self._read_slice(piece, grew=True))

    def _accept(
        self,
        piece: TimeSlice,
        pages: list[Page],
        grew: bool,
        *,
        approximate: int = 0,
        approximate_parts: int = 0,
        unsure: tuple[UnsurePart, ...] = (),
    ) -> None:
        jobs = tuple(job for page in pages for job in page.jobs)
        ids = [job.instance_id for job in jobs]
        if len(set(ids)) != len(ids):
            self._again(piece, "the same instanceId twice in one read")
            return
        for instance_id in ids:
            self._owner[instance_id] = piece
        invalid = sum(page.invalid for page in pages)
        unseen = sum(part.unseen for part in unsure)
        self._done[piece] = SliceRead(
            piece, jobs, invalid, grew, approximate, approximate_parts, unseen, unsure
        )

    def _forget(self, piece: TimeSlice) -> None:
        read = self._done.pop(piece, None)
        if read is not None:
            for job in read.jobs:
                self._owner.pop(job.instance_id, None)


def too_many_jobs(cap: int, total: int | None = None) -> ApiError:
    said = f" (a slice reports totalCount {total})" if total is not None else ""
    return ApiError(
        "too_many_jobs",
        f"reading the window needs more than {cap} requests{said}: the poll's deadline at "
        "poll.rate_limit allows no more; narrow the targets' quotas/owners or shorten poll.window",
    )
