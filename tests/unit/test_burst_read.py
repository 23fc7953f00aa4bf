"""A dense second (more than a page of jobs within two seconds): cut by quota and owner where
the API's filters allow, read both ways where they do not, never failing the poll."""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import EVERY_JOB, JobFilter, Page
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.burst_parts import pack, plan_parts, unmatched
from exporter.polling.read.burst_read import backward_pass, forward_pass, merge
from exporter.polling.schedule.poller import ReadPlan
from tests.unit.test_window_read import RunningList, ids, job, read

BURST = 150_000


def test_quotas_are_packed_into_parts_and_a_big_quota_is_cut_by_owner() -> None:
    counts = {
        ("etl", "robot"): 30.0,
        ("etl", "alice"): 9.0,
        ("etl", "bob"): 5.0,
        ("adhoc", "alice"): 10.0,
        ("ml", "carol"): 4.0,
        ("ml", "dave"): 1.0,
        ("odd,quota", "x"): 3.0,  # a comma: no request can name it alone
        ("adhoc", ""): 1.0,  # no owner: only its quota's part holds it
    }
    assert plan_parts(counts, EVERY_JOB) == [  # the largest first
        JobFilter(quotas=("etl",), owners=("robot",)),  # 30 jobs: one part, read by pages
        JobFilter(quotas=("adhoc", "ml")),  # 11 + 5 jobs
        JobFilter(quotas=("etl",), owners=("alice", "bob")),  # 9 + 5
    ]


def test_a_cut_stays_within_the_targets_own_filter() -> None:
    counts = {("etl", "robot"): 30.0, ("etl", "alice"): 20.0, ("adhoc", "alice"): 3.0}
    allowed = JobFilter(quotas=("etl",), owners=("alice",))
    assert plan_parts(counts, allowed) == [JobFilter(quotas=("etl",))]


def test_packing_is_first_fit_from_the_largest() -> None:
    assert pack({"a": 10, "b": 9, "c": 6, "d": 1, "e": 20}, 16) == [("e",), ("a", "c"), ("b", "d")]


def test_jobs_no_part_lets_through_are_the_rest() -> None:
    jobs = [job("1", BURST, quota="etl", owner="a"), job("2", BURST, quota="ml", owner="b")]
    assert unmatched(jobs, [JobFilter(quotas=("etl",))]) == jobs[1:]


def burst_of(combinations: dict[tuple[str, str], int]) -> RunningList:
    listing = RunningList({}, place=lambda i: zlib.crc32(i.encode()))
    for (quota, owner), count in combinations.items():
        for n in range(count):
            listing.submit(f"{quota}-{owner}-{n}", BURST, quota, owner)
    return listing


async def test_a_burst_over_many_owners_is_read_exactly_by_one_request_per_part() -> None:
    combos = {("etl", f"owner{n:02d}"): 6 for n in range(30)} | {("adhoc", "alice"): 12}
    listing = burst_of(combos)
    first = await read(listing)  # no plan yet: cut from pages sampled across the second
    assert ids(first) == sorted(listing.jobs)
    listing.requests.clear()
    second = await read(listing, ReadPlan.after(first))
    assert ids(second) == sorted(listing.jobs)
    assert second.approximate == 0
    dense = [n for piece, n in listing.requests if piece.contains(BURST) and piece.width <= 3]
    # 192 jobs in parts of at most 16 (two owners of 6, or adhoc's 12): 16 parts, 1 request
    # each, and the slice's first page: the count they add up to, just before them.
    assert len(dense) == 16 + 1
    assert all(number == 1 for number in dense)


async def test_an_owner_not_seen_last_time_is_found_by_the_count_and_read() -> None:
    combos = {("etl", f"owner{n:02d}"): 6 for n in range(10)}
    listing = burst_of(combos)
    plan = ReadPlan.after(await read(listing))
    for n in range(3):  # queued jobs of a new owner and quota start in the burst's second
        listing.submit(f"new-{n}", BURST, "fresh_quota", "newcomer")
    result = await read(listing, plan)
    assert ids(result) == sorted(listing.jobs)
    assert result.approximate == 0  # nothing moved while it was read: exact


async def test_one_owner_with_hundreds_of_jobs_in_one_second_is_read_both_ways() -> None:
    listing = burst_of({("etl", "robot"): 300, ("adhoc", "alice"): 10, ("ml", "bob"): 8})
    plan = ReadPlan.after(await read(listing))
    listing.filters.clear()
    result = await read(listing, plan)
    assert ids(result) == sorted(listing.jobs)
    assert (result.approximate, result.approximate_parts) == (0, 0)  # still: exact
    robot = [f for f in listing.filters if f == JobFilter(quotas=("etl",))]
    # Forward, 15 pages; backward from the forward pass's last answer, 14 more.
    assert len(robot) == 2 * 300 // PAGE_SIZE - 1


class MovingPart:
    """One part's list in the service's own order; events change it before given answers."""

    def __init__(self, size: int, events: list[tuple[int, str, int]], descending: bool) -> None:
        self.order = [f"j{n}" for n in range(size)]
        self.initial = set(self.order)
        self.finished: set[str] = set()
        self.started: set[str] = set()
        self.events = sorted(events)
        self.descending = descending
        self.answers = 0
        self.applied: list[tuple[int, str]] = []  # (answer, kind)

    async def get(self, number: int) -> Page:
        self.answers += 1
        while self.events and self.events[0][0] <= self.answers:
            _, kind, where = self.events.pop(0)
            self.applied.append((self.answers, kind))
            if kind == "finish" and self.order:
                self.finished.add(self.order.pop(where % len(self.order)))
            elif kind == "start":
                new = f"s{len(self.started)}"
                self.started.add(new)
                self.order.insert(where % (len(self.order) + 1), new)
        listed = self.order[::-1] if self.descending else self.order
        names = listed[PAGE_SIZE * (number - 1) : PAGE_SIZE * number]
        jobs = tuple(RunningJob(n, "p", "q", 0.1, 0.1, 0.5, BURST, BURST) for n in names)
        return Page(len(listed), jobs, len(jobs), 0)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    size=st.integers(min_value=21, max_value=200),
    events=st.lists(
        st.tuples(
            st.integers(min_value=2, max_value=25),  # before which answer, after the first
            st.sampled_from(["finish", "start"]),
            st.integers(min_value=0, max_value=10**6),  # where in the list
        ),
        max_size=30,
    ),
    descending=st.booleans(),
)
def test_both_ways_misses_at_most_the_finishes_of_pass_one_and_the_starts_of_pass_two(
    size: int, events: list[tuple[int, str, int]], descending: bool
) -> None:
    listing = MovingPart(size, events, descending)
    first = asyncio.run(listing.get(1))
    forward = asyncio.run(forward_pass(listing.get, first))
    turn = listing.answers  # the last answer of the forward pass
    backward = asyncio.run(backward_pass(listing.get, forward))
    result = merge(EVERY_JOB, forward, backward)
    counted = [j.instance_id for j in result.jobs]
    assert len(counted) == len(set(counted))
    assert set(counted) <= listing.initial | listing.started
    throughout = listing.initial - listing.finished
    missed = throughout - set(counted)
    finishes = sum(1 for _, kind in listing.applied if kind == "finish")
    starts = sum(1 for _, kind in listing.applied if kind == "start")
    finishes_forward = sum(1 for n, kind in listing.applied if kind == "finish" and n <= turn)
    starts_backward = sum(1 for n, kind in listing.applied if kind == "start" and n > turn)
    assert len(missed) <= min(finishes_forward, starts_backward)
    assert len(set(counted) - throughout) <= finishes + starts
    if result.exact:
        assert not missed


dense_events = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=150),  # after which answer the event happens
        st.sampled_from(["finish", "start", "start_new_owner"]),
        st.integers(min_value=0, max_value=10**6),  # which job / where / which combination
    ),
    max_size=25,
)


@hypothesis_settings(max_examples=80, deadline=None)
@given(
    events=dense_events,
    owners=st.integers(min_value=1, max_value=12),
    big=st.integers(min_value=0, max_value=120),
    descending=st.booleans(),
    planned=st.booleans(),
)
def test_a_moving_dense_second_is_published_within_the_changes_during_its_read(
    events: list, owners: int, big: int, descending: bool, planned: bool
) -> None:
    combos = {("etl", f"o{n}"): 7 for n in range(owners)} | {("ml", "robot"): big}
    combos[("adhoc", "alice")] = 25
    listing = burst_of(combos)
    listing.descending = descending
    plan = ReadPlan.after(asyncio.run(read(listing))) if planned else None
    pending = sorted(events)
    changes = Counter[str]()

    def churn(moving: RunningList) -> None:
        answer = len(moving.requests)
        while pending and pending[0][0] <= answer:
            _, kind, value = pending.pop(0)
            if kind == "finish" and moving.jobs:
                names = sorted(moving.jobs)
                del moving.jobs[names[value % len(names)]]
            else:  # a queued job of the burst's second starts running, of a known or new owner
                quota, owner = sorted(combos)[value % len(combos)]
                if kind == "start_new_owner":
                    owner = f"new{value % 3}"
                moving.submit(f"late{len(moving.ever)}", BURST, quota, owner)
            changes[kind] += 1

    listing.requests.clear()
    listing.before_answer = churn
    start_ids = set(listing.jobs)
    result = asyncio.run(read(listing, plan))
    counted = [j.instance_id for j in result.jobs()]
    throughout = start_ids & set(listing.jobs)
    assert len(counted) == len(set(counted))
    assert set(counted) <= listing.ever
    missed = throughout - set(counted)
    # Within the changes during the read, and the jobs the counts said that no answer showed
    # (what no part covers, looked for in 16 pages of the second, not all).
    assert len(missed) <= sum(changes.values()) + result.unseen
    if result.approximate == 0 and result.unseen == 0:
        assert not missed
    assert result.approximate <= len(counted)
