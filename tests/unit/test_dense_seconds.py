"""A dense second read in parallel from the first poll, and the services that break its read:
an order that changes on every answer (counted as unseen, never guessed), filters ignored or a
count that keeps rising (``inconsistent`` within a few requests)."""

from __future__ import annotations

import asyncio
import random

import pytest

from exporter.api.errors import ApiError
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page, TimeSlice
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.unseen_carry import carried_jobs, dense_jobs
from exporter.polling.read.window_read import WindowReader
from exporter.polling.schedule.poller import ReadPlan
from tests.unit.test_burst_read import BURST, burst_of
from tests.unit.test_window_read import WINDOW, RunningList, ids, read


def schedulers(listing: RunningList | None = None) -> RunningList:
    """1 000 jobs in one second: 30 owners x 3 quotas of 8 jobs, and 280 of one robot."""
    combos = {(q, f"team{n:02d}"): 8 for q in ("etl", "adhoc", "ml") for n in range(30)}
    return burst_of(combos | {("etl", "robot"): 280})


async def test_a_dense_second_never_seen_is_cut_from_samples_and_read_in_parallel() -> None:
    listing = schedulers()
    result = await read(listing)
    assert ids(result) == sorted(listing.jobs)
    assert (result.approximate, result.unseen) == (0, 0)
    whole = [
        n
        for (piece, n), f in zip(listing.requests, listing.filters, strict=True)
        if piece.contains(BURST) and piece.width <= 3 and f == EVERY_JOB
    ]
    # Page 1 (the count the parts add up to) and 49 sampled pages (every page after it): never
    # the whole second both ways (100 pages one after another).
    assert len(whole) == 1 + 49
    robot = [f for f in listing.filters if f.owners == ("robot",)]
    # Only the part no filter splits, both ways: 14 pages forward, 13 more backward.
    assert len(robot) == 2 * 280 // PAGE_SIZE - 1


async def test_an_order_that_changes_on_every_answer_is_counted_unseen_not_guessed() -> None:
    rng = random.Random(7)
    listing = burst_of({("etl", "robot"): 400})
    listing.place = lambda instance_id: rng.random()  # no tie-breaker: a new order per answer
    result = await read(listing)
    counted = set(ids(result))
    assert counted < set(listing.jobs)  # every job shown is real; some were never shown
    assert result.unseen == 400 - len(counted) > 0  # the count says exactly how many
    assert result.unsure[0].part == EVERY_JOB and result.unsure[0].unseen == result.unseen


def test_jobs_a_count_says_are_there_unseen_are_carried_not_finished() -> None:
    rng = random.Random(3)
    listing = burst_of({("etl", "robot"): 200})
    listing.place = lambda instance_id: rng.random()

    async def two_reads() -> tuple:
        first = await read(listing)
        return first, await read(listing, ReadPlan.after(first))

    first, second = asyncio.run(two_reads())
    last = dense_jobs(first.jobs(), first)
    carried = carried_jobs(last, second)
    shown = set(ids(second))
    assert len(carried) == min(second.unseen, len(set(last) - shown))
    assert not shown & {job.instance_id for job in carried}
    # What the diff is handed holds no job twice, and only jobs still running.
    assert {job.instance_id for job in carried} <= set(listing.jobs)


class IgnoringFilters(RunningList):
    """A service that answers every part with the whole second."""

    async def fetch(
        self, piece: TimeSlice, number: int, part: JobFilter = EVERY_JOB, ahead: bool = False
    ) -> Page:
        return await super().fetch(piece, number, EVERY_JOB, ahead)


async def test_parts_that_count_more_than_their_second_fail_within_a_few_requests() -> None:
    combos = {(q, f"team{n:02d}"): 8 for q in ("etl", "adhoc") for n in range(40)}
    honest = burst_of(combos)
    plan = ReadPlan.after(await read(honest))
    listing = IgnoringFilters(honest.jobs)
    listing.combination = honest.combination
    with pytest.raises(ApiError) as failure:
        await read(listing, plan)
    assert failure.value.reason == "inconsistent"
    assert "does not apply quotaNicknameList/jobOwnerList" in str(failure.value)
    # The second's page, its count, two parts' answers, and what the other 3 workers had asked.
    assert len(listing.requests) <= 2 + 2 + 6


async def test_a_count_that_rises_by_a_page_on_every_page_fails_within_a_few_requests() -> None:
    def a_page_more(listing: RunningList) -> None:
        for n in range(PAGE_SIZE):
            listing.submit(f"more-{len(listing.requests)}-{n}", BURST, "etl", "robot")

    listing = burst_of({("etl", "robot"): 100})
    listing.before_answer = a_page_more
    reader = WindowReader(listing.fetch, concurrency=1, request_cap=100_000)
    with pytest.raises(ApiError) as failure:
        await reader.read(WINDOW, [TimeSlice(BURST, BURST + 1)])
    assert failure.value.reason == "inconsistent"
    assert "rose on each of 3 answers" in str(failure.value)
    assert len(listing.requests) == 1 + 5 + 3  # page 1, its 5 other pages sampled, 3 forward


async def test_a_read_cut_short_keeps_how_the_dense_second_splits() -> None:
    listing = schedulers()
    reader = WindowReader(listing.fetch, concurrency=4, request_cap=60)
    with pytest.raises(ApiError):
        await reader.read(WINDOW, [TimeSlice(BURST, BURST + 1)])
    learned = reader.learned[BURST]
    assert round(sum(learned.values())) == 1000  # the samples, scaled to the second's count
    assert learned[("etl", "robot")] > 150
