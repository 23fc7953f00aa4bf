"""Reading a window as atomic slices of submission time, against a running list that moves.

The list here is an in-process model of the service (filtered by submission time, listed in
order, paged by 20) whose contents change between requests the way each test says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.page_checks import check_tiling
from exporter.polling.read.window_read import WindowRead, WindowReader
from exporter.polling.schedule.poller import ReadPlan

WINDOW = TimeSlice(100_000, 200_000)


def job(instance_id: str, submitted: int, project: str = "p", quota: str = "q", owner: str = "o"):
    return RunningJob(instance_id, project, quota, 0.01, 0.01, 0.5, submitted, submitted, owner)


class RunningList:
    """The service's running list; ``before_answer`` may change it before each answer.

    Filtered by submission time and by quota and owner lists, listed by submission time (both
    orders) and, within a second, by ``place`` (instance id unless told otherwise: a new job of
    a second may land anywhere among the others), paged by 20.
    """

    def __init__(
        self,
        jobs: dict[str, int],
        *,
        descending: bool = False,
        before_answer: Callable[[RunningList], None] = lambda listing: None,
        place: Callable[[str], object] = lambda instance_id: instance_id,
    ) -> None:
        self.jobs = dict(jobs)  # instance id -> submission second
        self.combination: dict[str, tuple[str, str]] = {}  # instance id -> (quota, owner)
        self.descending = descending
        self.before_answer = before_answer
        self.place = place
        self.requests: list[tuple[TimeSlice, int]] = []
        self.filters: list[JobFilter] = []
        self.ahead: list[bool] = []  # whether each request was asked to go ahead of the line
        self.ever: set[str] = set(self.jobs)

    def submit(self, instance_id: str, second: int, quota: str = "q", owner: str = "o") -> None:
        self.jobs[instance_id] = second
        self.combination[instance_id] = (quota, owner)
        self.ever.add(instance_id)

    def quota_owner(self, instance_id: str) -> tuple[str, str]:
        return self.combination.get(instance_id, ("q", "o"))

    async def fetch(
        self, piece: TimeSlice, number: int, part: JobFilter = EVERY_JOB, ahead: bool = False
    ) -> Page:
        self.requests.append((piece, number))
        self.filters.append(part)
        self.ahead.append(ahead)
        self.before_answer(self)
        await asyncio.sleep(0)  # let the other workers interleave
        listed = sorted(
            (
                (second, self.place(i), i)
                for i, second in self.jobs.items()
                if piece.contains(second) and part.matches(*self.quota_owner(i))
            ),
            reverse=self.descending,
        )
        page = listed[PAGE_SIZE * (number - 1) : PAGE_SIZE * number]
        jobs = tuple(job(i, second, "p", *self.quota_owner(i)) for second, _, i in page)
        return Page(len(listed), jobs, len(jobs), 0)


async def read(
    listing: RunningList, plan: list[TimeSlice] | ReadPlan | None = None, *, cap: int = 100_000
) -> WindowRead:
    """One read of ``WINDOW``; by ``plan`` when given (a ``ReadPlan``: as the poller reads)."""
    seen = plan.dense if isinstance(plan, ReadPlan) else None
    if isinstance(plan, ReadPlan):
        plan = plan.for_window(WINDOW)
    reader = WindowReader(listing.fetch, concurrency=4, request_cap=cap, seen=seen)
    return await reader.read(WINDOW, plan or [WINDOW])


def spread(count: int, start: int = 150_000, step: int = 7) -> dict[str, int]:
    return {f"j{n:05d}": start + n * step for n in range(count)}


def ids(result: WindowRead) -> list[str]:
    return sorted(j.instance_id for j in result.jobs())


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
async def test_a_steady_list_is_read_exactly_then_by_its_plan_in_one_request_per_page(
    descending: bool,
) -> None:
    listing = RunningList(spread(2000), descending=descending)
    first = await read(listing)
    assert ids(first) == sorted(listing.jobs)
    assert first.requests <= 1.7 * 100  # sampled pages, then estimated parts
    listing.requests.clear()
    plan = ReadPlan.after(first).for_window(WINDOW)
    second = await read(listing, plan)
    assert ids(second) == sorted(listing.jobs)
    assert second.requests == len(listing.requests) == 100  # ceil(2000 / 20), nothing more


async def test_a_slice_that_grew_past_a_page_is_split_and_its_region_packed_with_headroom() -> None:
    listing = RunningList(spread(200))
    first = await read(listing)
    plan = ReadPlan.after(first).for_window(WINDOW)
    for n in range(15):  # queued jobs start running inside one planned slice
        listing.submit(f"late{n}", 150_003)
    second = await read(listing, plan)
    assert ids(second) == sorted(listing.jobs)
    assert second.moving  # the slice that overflowed
    third_plan = ReadPlan.after(second).for_window(WINDOW)
    grown = next(p for p in third_plan if p.contains(150_003))
    assert sum(1 for s in listing.jobs.values() if grown.contains(s)) <= 16


async def test_a_burst_in_one_second_is_read_by_pages_twice_and_accepted_when_identical() -> None:
    jobs = {f"burst{n:03d}": 150_000 for n in range(130)} | spread(40, start=160_000)
    listing = RunningList(jobs)
    result = await read(listing)
    assert ids(result) == sorted(jobs)
    narrow = [p for p, n in listing.requests if p.width <= 3 and p.contains(150_000)]
    pages_of_the_burst = 7  # ceil(130 / 20)
    # Its pages 2..7 sampled together for its quotas and owners (one: no filter splits it),
    # then the whole second both ways (backward from the forward pass's last answer).
    assert len(narrow) == (pages_of_the_burst - 1) + 2 * pages_of_the_burst - 1


async def test_a_dense_second_that_moves_while_read_is_published_and_counted_approximate() -> None:
    jobs = {f"burst{n:03d}": 150_000 for n in range(50)}

    def one_finishes_during_the_backward_pass(listing: RunningList) -> None:
        dense = [number for piece, number in listing.requests if piece.width <= 3]
        if len(dense) == 4:  # pages 1, 2, 3 forward (3 starts the backward pass): now page 2
            listing.jobs.pop("burst007", None)
            listing.submit("burst-new", 150_001)

    listing = RunningList(jobs, before_answer=one_finishes_during_the_backward_pass)
    result = await read(listing)
    counted = ids(result)
    assert set(jobs) <= set(counted) <= listing.ever  # burst007 ran until after its read
    assert len(counted) in (50, 51)
    assert result.rereads == 0
    assert (result.approximate, result.approximate_parts) == (len(counted), 1)


async def test_an_instance_id_in_two_slices_makes_both_read_again() -> None:
    listing = RunningList(spread(60))
    answers = {"n": 0}
    original = listing.fetch

    async def lying_once(piece: TimeSlice, number: int) -> Page:
        page = await original(piece, number)
        answers["n"] += 1
        if answers["n"] == 2 and page.jobs:  # one answer holds a job of another slice
            page = Page(
                page.total_count,
                (*page.jobs[:-1], job("j00000", piece.start)),  # its id, this slice's time
                page.records,
                0,
            )
        return page

    listing.fetch = lying_once  # type: ignore[method-assign]
    plan = [TimeSlice(100_000, 150_139), TimeSlice(150_140, 150_279), TimeSlice(150_280, 200_000)]
    result = await read(listing, plan)
    assert ids(result) == sorted(listing.jobs)
    assert result.rereads >= 1


async def test_a_slice_that_never_agrees_with_itself_fails_the_poll_as_inconsistent() -> None:
    listing = RunningList(spread(10))
    original = listing.fetch

    async def always_overfull(piece: TimeSlice, number: int) -> Page:
        page = await original(piece, number)
        return Page(page.total_count - 5, page.jobs, page.records, 0)

    listing.fetch = always_overfull  # type: ignore[method-assign]
    with pytest.raises(ApiError) as caught:
        await read(listing)
    assert caught.value.reason == "inconsistent"
    assert "read 4 times without a consistent answer: page holds 10 records" in str(caught.value)


async def test_more_records_than_the_total_says_is_read_again() -> None:
    listing = RunningList(spread(10))
    original = listing.fetch
    lies = {"left": 1}

    async def overfull(piece: TimeSlice, number: int) -> Page:
        page = await original(piece, number)
        if lies["left"]:
            lies["left"] -= 1
            return Page(page.total_count - 5, page.jobs, page.records, 0)
        return page

    listing.fetch = overfull  # type: ignore[method-assign]
    result = await read(listing)
    assert ids(result) == sorted(listing.jobs)
    assert result.rereads == 1


async def test_a_total_beyond_the_request_cap_fails_at_once() -> None:
    async def huge(piece: TimeSlice, number: int) -> Page:
        jobs = tuple(job(f"h{n}", piece.start) for n in range(PAGE_SIZE))
        return Page(10**9, jobs, PAGE_SIZE, 0)

    reader = WindowReader(huge, concurrency=4, request_cap=5_000)
    with pytest.raises(ApiError) as caught:
        await reader.read(WINDOW, [WINDOW])
    assert caught.value.reason == "too_many_jobs"
    assert reader.requests == 1
    assert "totalCount 1000000000" in str(caught.value)


async def test_the_request_cap_bounds_a_read_that_keeps_splitting() -> None:
    async def always_more(piece: TimeSlice, number: int) -> Page:
        jobs = tuple(job(f"{piece.start}-{number}-{n}", piece.start) for n in range(PAGE_SIZE))
        return Page(30, jobs, PAGE_SIZE, 0)

    reader = WindowReader(always_more, concurrency=4, request_cap=200)
    with pytest.raises(ApiError) as caught:
        await reader.read(WINDOW, [WINDOW])
    assert caught.value.reason == "too_many_jobs"
    assert reader.requests <= 200


churn_events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=400),  # after which answer the event happens
        st.sampled_from(["finish", "submit", "start_queued"]),
        st.integers(min_value=0, max_value=10**6),  # which job / which second
    ),
    max_size=40,
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=churn_events,
    count=st.integers(min_value=0, max_value=300),
    dense=st.booleans(),
    descending=st.booleans(),
    planned=st.booleans(),
)
def test_every_job_running_throughout_is_counted_once_and_only_jobs_that_ran(
    events: list, count: int, dense: bool, descending: bool, planned: bool
) -> None:
    step = 1 if dense else 97  # dense: many jobs share seconds, narrow slices get paged
    initial = {f"j{n}": 150_000 + (n // 3 if dense else n * step) for n in range(count)}
    pending = sorted(events)
    answers = {"n": 0}

    def churn(listing: RunningList) -> None:
        answers["n"] += 1
        while pending and pending[0][0] < answers["n"]:
            _, kind, value = pending.pop(0)
            if kind == "finish" and listing.jobs:
                names = sorted(listing.jobs)
                del listing.jobs[names[value % len(names)]]
            elif kind == "submit":  # a new job, submitted at the window's end
                listing.submit(f"new{value}-{len(listing.ever)}", WINDOW.end)
            else:  # a job submitted long ago leaves the queue and starts running
                second = WINDOW.start + value % WINDOW.width
                listing.submit(f"queued{value}-{len(listing.ever)}", second)

    listing = RunningList(initial, descending=descending, before_answer=churn)
    plan = None
    if planned:
        warm = asyncio.run(read(RunningList(initial, descending=descending)))
        plan = ReadPlan.after(warm).for_window(WINDOW)
    start_ids = set(listing.jobs)
    try:
        result = asyncio.run(read(listing, plan))
    except ApiError as error:
        assert error.reason == "inconsistent"  # allowed only when the list never held still
        assert events
        return
    counted = [j.instance_id for j in result.jobs()]
    throughout = start_ids & set(listing.jobs)  # a job never comes back once finished
    assert len(counted) == len(set(counted))
    if result.approximate == 0 and result.unseen == 0:
        assert throughout <= set(counted)
    else:  # a dense second read both ways, or its rest looked for in part of its pages
        assert len(throughout - set(counted)) <= len(events) + result.unseen
    assert set(counted) <= listing.ever


async def test_a_read_cut_short_still_leaves_where_the_jobs_are_for_the_next_one() -> None:
    listing = RunningList(spread(2000))
    reader = WindowReader(listing.fetch, concurrency=4, request_cap=120)
    with pytest.raises(ApiError):
        await reader.read(WINDOW, [WINDOW])
    pieces = reader.pieces
    check_tiling(WINDOW, pieces)
    assert len(pieces) > 20  # the survey's cuts, not the whole window again
    fresh = await read(RunningList(spread(2000)))
    listing.requests.clear()
    resumed = await read(listing, pieces)
    assert ids(resumed) == sorted(listing.jobs)
    assert resumed.requests < fresh.requests
