"""One consistent read of a poll's window, as disjoint slices of submission time.

Each slice is read atomically: by one request when its jobs fit in a page, or, for a slice too
narrow to split, by reading all its pages twice and accepting only two identical reads (every
job on both reads was running throughout the time between them, so together they are the
slice's exact content at one instant). A slice that holds more than a page is cut, at estimated
counts when pages were sampled, and its parts are read in turn. A job seen in two slices, or a
page that contradicts its own ``totalCount``, makes those slices be read again.

Work is a queue pulled by ``concurrency`` workers: nothing is created per page up front, and a
poll never starts more than ``request_cap`` requests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from exporter.api.errors import ApiError
from exporter.api.jobs import RunningJob
from exporter.api.pages import Page, TimeSlice
from exporter.api.wire import PAGE_SIZE
from exporter.polling.page_checks import (
    check_tiling,
    differ,
    expected_records,
    narrow_problem,
    pages_needed,
    without_strays,
)
from exporter.polling.slices import (
    estimate_points,
    sample_pages,
    split_by_estimate,
)

# A slice whose reads keep contradicting each other is read this many times before the poll fails.
MAX_SLICE_ATTEMPTS = 4


FetchPage = Callable[[TimeSlice, int], Awaitable[Page]]


@dataclass(frozen=True, slots=True)
class SliceRead:
    """The jobs of one slice, read atomically; ``grew`` if it held more than planned."""

    piece: TimeSlice
    jobs: tuple[RunningJob, ...]
    invalid: int
    grew: bool


@dataclass(frozen=True, slots=True)
class WindowRead:
    """Every slice of a window, read consistently: the window's running jobs, each once."""

    window: TimeSlice
    slices: tuple[SliceRead, ...]
    requests: int
    rereads: int

    def jobs(self) -> Iterator[RunningJob]:
        for piece in self.slices:
            yield from piece.jobs

    @property
    def invalid(self) -> int:
        return sum(piece.invalid for piece in self.slices)

    @property
    def moving(self) -> list[TimeSlice]:
        return [piece.piece for piece in self.slices if piece.grew]


@dataclass
class _NarrowRead:
    """The two full reads of a slice too narrow to split, as their pages arrive."""

    piece: TimeSlice
    total: int
    grew: bool
    first: dict[int, Page] = field(default_factory=dict)
    second: dict[int, Page] = field(default_factory=dict)
    second_started: bool = False
    pending: int = 0


class WindowReader:
    """Reads one window; one instance per poll. ``read()`` raises ``ApiError`` on failure."""

    def __init__(self, fetch: FetchPage, *, concurrency: int, request_cap: int) -> None:
        self._fetch = fetch
        self._concurrency = concurrency
        self._request_cap = request_cap
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._done: dict[TimeSlice, SliceRead] = {}
        self._owner: dict[str, TimeSlice] = {}
        self._submitted: dict[str, int] = {}
        self._attempts: Counter[TimeSlice] = Counter()
        self._started = 0
        self._requests = 0
        self._rereads = 0
        self._survey = False
        self._pieces: set[TimeSlice] = set()

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

    async def read(self, window: TimeSlice, plan: list[TimeSlice]) -> WindowRead:
        """Every slice of ``plan`` (which must tile ``window``), read consistently."""
        self._pieces = set(plan)
        # The first poll's single slice is a survey, not a plan that turned out too small.
        self._survey = plan == [window]
        for piece in plan:
            self._queue.put_nowait(lambda piece=piece: self._read_slice(piece, grew=False))
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
            item = await self._queue.get()
            try:
                await item()
            finally:
                self._queue.task_done()

    async def _get(self, piece: TimeSlice, number: int) -> Page:
        if self._started >= self._request_cap:
            raise too_many_jobs(self._request_cap)
        self._started += 1
        page = await self._fetch(piece, number)
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

    def _enqueue(self, item: Callable[[], Awaitable[None]]) -> None:
        self._queue.put_nowait(item)

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
                state = _NarrowRead(piece, total, grew, first={1: page})
                self._read_pass(state, state.first)

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

    def _read_pass(self, state: _NarrowRead, pages: dict[int, Page]) -> None:
        """Fetch the pages of a narrow slice that ``pages`` (one pass) still lacks."""
        missing = [n for n in range(1, pages_needed(state.total) + 1) if n not in pages]
        state.pending = len(missing)
        if not missing:
            self._narrow_pass_done(state)
        for number in missing:
            self._enqueue(lambda number=number: self._narrow_page(state, pages, number))

    async def _narrow_page(self, state: _NarrowRead, pages: dict[int, Page], number: int) -> None:
        pages[number] = await self._get(state.piece, number)
        state.pending -= 1
        if state.pending == 0:
            self._narrow_pass_done(state)

    def _narrow_pass_done(self, state: _NarrowRead) -> None:
        problem = narrow_problem(state.piece, state.total, state.first)
        if problem is None and state.second_started:
            problem = narrow_problem(state.piece, state.total, state.second) or differ(
                state.first, state.second
            )
        if problem is None and self._contradicts(state.piece, list(state.first.values())):
            problem = "an instanceId seen in two slices"
        if problem is not None:
            self._again(state.piece, problem)
        elif not state.second_started:
            state.second_started = True
            self._read_pass(state, state.second)
        else:
            self._accept(state.piece, [state.first[n] for n in sorted(state.first)], state.grew)

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

    def _accept(self, piece: TimeSlice, pages: list[Page], grew: bool) -> None:
        jobs = tuple(job for page in pages for job in page.jobs)
        ids = [job.instance_id for job in jobs]
        if len(set(ids)) != len(ids):
            self._again(piece, "the same instanceId twice in one read")
            return
        for instance_id in ids:
            self._owner[instance_id] = piece
        invalid = sum(page.invalid for page in pages)
        self._done[piece] = SliceRead(piece, jobs, invalid, grew)

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
