"""Pure arithmetic of the order a planned read starts its slices in: longest path first.

Most slices of a plan are one request each, sent as fast as the rate allows, in any order. A
dense second is not: its first page, its parts' counts, then each part over a page read forward
and backward, one page after the other (``burst_read``). A part of 1 000 jobs (one scheduler
account firing at the top of the hour) is a chain of about 100 requests that no concurrency
shortens; queued in time order behind the window's other slices it starts late and runs alone
at the end of the poll (measured: 10 s of a 26 s poll whose other requests ended at 15 s). So
the slices whose read is a chain are started first, the longest first, as a scheduler starts a
job graph's critical path first; the slices that are one request each fill the rate around it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence

from exporter.api.wire.pages import TimeSlice
from exporter.polling.read.burst_parts import Combination
from exporter.polling.read.page_checks import pages_needed


def chain_length(counts: Mapping[Combination, float]) -> int:
    """Requests one after another a dense slice of these (quota, owner) counts needs at least.

    The slice's first page and its parts' counts (2), then the largest combination, which no
    filter splits, read forward and backward by pages after its first: ``2 * pages - 1`` more.
    A slice whose combinations each fit a page is those 2 requests.
    """
    largest = max(counts.values(), default=0.0)
    pages = pages_needed(round(largest))
    return 2 + (2 * pages - 1 if pages > 1 else 0)


def dense_counts(
    plan: Sequence[TimeSlice], seen: Mapping[int, Counter[Combination]]
) -> dict[TimeSlice, Counter[Combination]]:
    """Per slice of ``plan`` (sorted, disjoint) holding a second of ``seen``, the (quota,
    owner) counts the last poll saw in its dense seconds."""
    starts = [piece.start for piece in plan]
    counts: dict[TimeSlice, Counter[Combination]] = {}
    for second, combinations in seen.items():
        index = bisect.bisect_right(starts, second) - 1
        if combinations and index >= 0 and plan[index].contains(second):
            counts.setdefault(plan[index], Counter()).update(combinations)
    return counts


def longest_first(
    plan: Sequence[TimeSlice], seen: Mapping[int, Counter[Combination]]
) -> list[TimeSlice]:
    """``plan``'s slices (sorted, disjoint), those whose read is the longest chain of requests
    first, the others (one request, or a split whose parts run at once) after, in plan order."""
    chains = {piece: chain_length(counts) for piece, counts in dense_counts(plan, seen).items()}
    return sorted(plan, key=lambda piece: -chains.get(piece, 1))
