"""Reading a part of a dense second that holds more than a page: forward, then backward.

Inside one second the API offers nothing but offsets, and they move while a part is read: a job
finishing moves every job listed after it one place down, a queued job starting in that second
moves them one place up. Nothing documents how the service orders the jobs of one second, so no
order is assumed; only that two jobs on two answers keep their places relative to each other.

- A **forward** pass (pages 1, 2, …, each asked for after the answer before it) misses a job only
  when a job listed before it finishes while the pass runs: it slides back over the frontier.
  An insertion moves jobs on, ahead of the frontier: seen twice at worst, and merged.
- A **backward** pass (pages n, …, 1) misses a job only when a job is inserted before it while
  the pass runs: it slides on over the frontier. A finish moves jobs towards pages still to come.
- One pass after the other, merged by ``instanceId``: a job running throughout is lost only if a
  job before it finished during the first pass *and* another was inserted before it during the
  second, so at most min(finishes in pass 1, starts in pass 2) jobs are missed, and the merge
  holds at most the jobs that finished during the read too many. Both are bounded by the jobs
  of that part that started or finished during its own read.
- When both passes saw the same jobs under one ``totalCount``, none was missed (a miss needs a
  job the first pass saw that finished before the second) and every job counted ran from its
  first read to its second: the part is **exact**.
- A service that sorts the jobs of one second without a tie-breaker breaks the one assumption:
  each answer lists them in another order, and two passes under one ``totalCount`` disagree.
  What no answer showed is then counted, not guessed: ``unseen`` is the most jobs a
  ``totalCount`` of the part said, less the jobs (valid or not) the passes showed.
- A ``totalCount`` that rises on every page of the forward pass, by more than a page in all,
  is no list moving (jobs start into one second a few a second, not a page per request): the
  read would never end, so it fails as ``inconsistent`` after a few requests.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import JobFilter, Page
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.polling.read.page_checks import pages_needed

# One page of the part being read, by number.
GetPage = Callable[[int], Awaitable[Page]]

# Answers in a row whose ``totalCount`` rose, past which a rise of more than a page is no churn.
RISING_ANSWERS = 3


@dataclass(frozen=True, slots=True)
class PartRead:
    """The jobs of one part of a dense second; ``exact`` unless read both ways with a change."""

    part: JobFilter
    jobs: tuple[RunningJob, ...]
    invalid: int
    total: int  # ``totalCount`` of the part's first answer
    exact: bool
    both_ways: bool = False
    # Jobs some ``totalCount`` of the part counted that no answer showed.
    unseen: int = 0


async def forward_pass(get: GetPage, first: Page) -> list[Page]:
    """Pages 1, 2, … one after another, until the latest ``totalCount`` says there are no more."""
    pages = [first]
    while PAGE_SIZE * len(pages) < pages[-1].total_count:
        pages.append(await get(len(pages) + 1))
        check_not_rising([page.total_count for page in pages])
    return pages


def check_not_rising(totals: list[int]) -> None:
    """Raise ``inconsistent`` when the last answers' ``totalCount`` each rose, by over a page."""
    recent = totals[-RISING_ANSWERS - 1 :]
    rising = len(recent) > RISING_ANSWERS and all(a < b for a, b in itertools.pairwise(recent))
    if rising and recent[-1] - recent[0] > PAGE_SIZE:
        raise ApiError(
            "inconsistent",
            f"totalCount rose on each of {RISING_ANSWERS} answers of one dense second "
            f"({recent[0]} to {recent[-1]}): a read of it would never end",
        )


async def backward_pass(get: GetPage, forward: list[Page]) -> list[Page]:
    """Pages n, …, 1 one after another, n being the last page when the forward pass ended.

    When the forward pass ended on page n, its answer is the backward pass's first: the pass
    starts at that answer and reads n - 1, …, 1 after it, one request fewer than asking for
    page n again right away (a part of 33 jobs: 3 requests, not 4).
    """
    last = forward[-1]
    pages = pages_needed(last.total_count)
    if len(forward) == pages:
        return [last, *[await get(number) for number in range(pages - 1, 0, -1)]]
    return [await get(number) for number in range(pages, 0, -1)]


def merge(part: JobFilter, forward: list[Page], backward: list[Page]) -> PartRead:
    """The jobs either pass saw, each once; exact when both saw the same under one total."""
    seen = [job for page in forward for job in page.jobs]
    again = {job.instance_id: job for page in backward for job in page.jobs}
    union = {job.instance_id: job for job in seen} | again
    totals = {page.total_count for page in (*forward, *backward)}
    first_ids = [job.instance_id for job in seen]
    exact = (
        len(totals) == 1
        and len(first_ids) == len(set(first_ids))
        and set(first_ids) == set(again)
        and sum(page.records for page in forward) == forward[0].total_count
        and sum(page.records for page in backward) == forward[0].total_count
    )
    invalid = max(sum(page.invalid for page in forward), sum(page.invalid for page in backward))
    unseen = max(0, max(totals) - len(union) - invalid)
    return PartRead(
        part, tuple(union.values()), invalid, forward[0].total_count, exact, True, unseen
    )


async def read_both_ways(part: JobFilter, get: GetPage, first: Page) -> PartRead:
    """One part read forward from ``first`` (its page 1), then backward, merged."""
    forward = await forward_pass(get, first)
    backward = await backward_pass(get, forward)
    return merge(part, forward, backward)
