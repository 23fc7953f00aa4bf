"""Pure arithmetic of a dense second: cutting it by quota and owner into parts that fit a page.

A slice too narrow to cut by time (more than a page of jobs submitted within two seconds, a
scheduler firing at 00:00:00) can still be cut by the API's other filters, ``quotaNicknameList``
and ``jobOwnerList``. Parts with disjoint filters hold disjoint jobs, and a part whose jobs fit
a page is again read by one request: one consistent view of it. The filters have no "exclude",
so a cut is complete only when its parts' counts add up to the slice's (checked by the reader).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import JobFilter
from exporter.polling.read.slices import MOVING_CAPACITY

# Jobs of one (quota, owner) combination as last seen or sampled; the key of a cut.
Combination = tuple[str, str]


def combinations(jobs: Iterable[RunningJob], weight: float = 1.0) -> Counter[Combination]:
    """How many of ``jobs`` each (quota, owner) holds, each job counted ``weight`` times."""
    counts: Counter[Combination] = Counter()
    for job in jobs:
        counts[(job.quota, job.owner)] += weight  # type: ignore[assignment]
    return counts


def filterable(value: str, allowed: tuple[str, ...]) -> bool:
    """True if a request can ask for ``value`` alone within the target's own list ``allowed``."""
    return bool(value) and "," not in value and (not allowed or value in allowed)


def pack(counts: Mapping[str, float], capacity: float) -> list[tuple[str, ...]]:
    """Values grouped so each group's count is at most ``capacity`` (first fit, largest first).

    A value over ``capacity`` on its own is a group of its own.
    """
    groups: list[tuple[list[str], float]] = []
    for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        for index, (members, held) in enumerate(groups):
            if held + count <= capacity:
                groups[index] = ([*members, value], held + count)
                break
        else:
            groups.append(([value], count))
    return [tuple(sorted(members)) for members, _ in groups]


def plan_parts(
    counts: Mapping[Combination, float],
    allowed: JobFilter,
    capacity: float = MOVING_CAPACITY,
) -> list[JobFilter]:
    """Disjoint filters covering every combination in ``counts`` that a request can ask for.

    Quotas are grouped into parts of at most ``capacity`` jobs; a quota holding more is cut by
    owner the same way; an owner holding more than ``capacity`` in one quota is one part, read
    by pages. Combinations no request can name (an empty owner, a comma, outside the target's
    filter) are left out: the reader's count check finds them. The largest parts come first: a
    part over a page is read one page after another, a chain of requests started first.
    """
    by_quota: dict[str, Counter[str]] = defaultdict(Counter)
    for (quota, owner), count in counts.items():
        if filterable(quota, allowed.quotas):
            by_quota[quota][owner] += count  # type: ignore[assignment]
    quota_totals = {quota: sum(owners.values()) for quota, owners in by_quota.items()}
    parts: list[JobFilter] = []
    for group in pack(quota_totals, capacity):
        if len(group) > 1 or quota_totals[group[0]] <= capacity:
            parts.append(JobFilter(quotas=group))
            continue
        quota = group[0]
        owners = {
            owner: count
            for owner, count in by_quota[quota].items()
            if filterable(owner, allowed.owners)
        }
        groups = pack(owners, capacity)
        if len(groups) == 1:  # the quota alone: an owner not seen yet is in it too
            parts.append(JobFilter(quotas=(quota,)))
        else:
            parts.extend(JobFilter(quotas=(quota,), owners=members) for members in groups)
    return sorted(parts, key=lambda part: -expected_jobs(part, counts))


def expected_jobs(part: JobFilter, counts: Mapping[Combination, float]) -> float:
    """How many of the jobs in ``counts`` ``part``'s filter lets through."""
    return sum(count for (quota, owner), count in counts.items() if part.matches(quota, owner))


def unmatched(jobs: Iterable[RunningJob], parts: Iterable[JobFilter]) -> list[RunningJob]:
    """The jobs of ``jobs`` that no part's filter lets through."""
    parts = list(parts)
    return [job for job in jobs if not any(part.matches(job.quota, job.owner) for part in parts)]
