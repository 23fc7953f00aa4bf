"""The order a planned read starts its slices in: the dense seconds whose read is a chain of
requests one after another first, the longest first, so they do not form the poll's tail."""

from __future__ import annotations

from collections import Counter

from exporter.api.wire.pages import EVERY_JOB, JobFilter, TimeSlice
from exporter.polling.read.burst_parts import expected_jobs
from exporter.polling.read.read_order import chain_length, dense_counts, longest_first
from exporter.polling.schedule.poller import ReadPlan
from tests.unit.test_burst_read import BURST, burst_of
from tests.unit.test_window_read import WINDOW, ids, read


def test_a_dense_slice_is_its_first_page_its_parts_counts_and_its_largest_part_both_ways() -> None:
    # 1 000 jobs of one robot: 50 pages forward (the first is its count) and 50 backward.
    assert chain_length(Counter({("etl", "robot"): 1000, ("etl", "alice"): 30})) == 2 + 99
    assert chain_length(Counter({("etl", "robot"): 21})) == 2 + 3  # 2 pages: 1 more + 2 back
    # Every combination fits a page: the slice's page 1, then the parts, one request each.
    assert chain_length(Counter({("etl", "alice"): 20, ("ml", "bob"): 20})) == 2


def test_the_last_polls_dense_seconds_are_found_in_the_slices_that_hold_them() -> None:
    plan = [TimeSlice(0, 9), TimeSlice(10, 11), TimeSlice(12, 13), TimeSlice(14, 30)]
    seen = {
        10: Counter({("q", "a"): 40}),
        11: Counter({("q", "a"): 5, ("q", "b"): 7}),
        20: Counter({("q", "c"): 30}),
        99: Counter({("q", "d"): 300}),  # outside the plan: left out
    }
    assert dense_counts(plan, seen) == {
        TimeSlice(10, 11): Counter({("q", "a"): 45, ("q", "b"): 7}),
        TimeSlice(14, 30): Counter({("q", "c"): 30}),
    }


def test_the_longest_chain_starts_first_and_the_rest_keep_their_order() -> None:
    plan = [TimeSlice(s, s + 1) for s in range(0, 20, 2)]
    seen = {4: Counter({("q", "a"): 60}), 12: Counter({("q", "robot"): 1000}), 16: Counter()}
    ordered = longest_first(plan, seen)
    assert ordered[:2] == [TimeSlice(12, 13), TimeSlice(4, 5)]
    assert ordered[2:] == [piece for piece in plan if piece not in ordered[:2]]
    assert longest_first(plan, {}) == plan


def test_a_dense_cut_lists_its_largest_parts_first() -> None:
    counts = {("etl", "robot"): 300.0, ("etl", "alice"): 9.0, ("ml", "bob"): 40.0}
    assert expected_jobs(JobFilter(quotas=("etl",)), counts) == 309.0
    assert expected_jobs(EVERY_JOB, counts) == 349.0


async def test_a_planned_read_starts_the_robot_of_its_dense_second_before_the_other_slices() -> (
    None
):
    listing = burst_of({("etl", f"team{n:02d}"): 8 for n in range(10)} | {("etl", "robot"): 100})
    for n in range(400):  # a page's worth of jobs every 20 slices around it
        listing.submit(f"spread{n:03d}", WINDOW.start + 1 + n * 200)
    first = await read(listing)
    listing.requests.clear()
    listing.filters.clear()
    listing.ahead.clear()
    second = await read(listing, ReadPlan.after(first))
    assert ids(second) == sorted(listing.jobs)
    # The dense slice's page 1 goes first, then its parts' counts, the robot's first: its
    # chain of pages is under way while the window's other slices are read (in time order
    # the slice is the 13th of 22; 4 requests in flight).
    assert listing.requests[0][0].contains(BURST) and listing.filters[0] == EVERY_JOB
    robot = [n for n, f in enumerate(listing.filters) if f.owners == ("robot",)]
    assert len(robot) == 2 * 100 // 20 - 1  # pages 1-5 forward, then 4-1 backward
    assert robot[0] <= 4
    # Each of the dense second's requests after its slice's page 1 (and only those) goes
    # ahead of the line for a place in flight, as its steps go ahead in the reader's queue.
    dense = [piece.contains(BURST) and piece.width <= 3 for piece, _ in listing.requests]
    assert listing.ahead == [False, *dense[1:]]
