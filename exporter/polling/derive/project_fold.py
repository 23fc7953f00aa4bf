"""Bounded series: per quota, the projects holding the most CUs keep their own group, the rest
are folded into one ``project="__other__"`` group, so every sum over projects stays exact.

Pure functions over ``GroupKey -> value`` mappings: the poller folds each poll's groups
(``fold_projects``) before it publishes them; any later step keyed by (quota, project) can fold
its own values with ``fold_by_quota``, given how to rank and merge them. How a group's fields
merge:

- summed: running jobs, CU and memory shares, the progress sum, jobs at progress 0;
- least: the oldest start (of all jobs, and of those at progress 0);
- greatest: the longest queue time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from exporter.polling.derive.aggregation import GroupAggregate, GroupKey

# Not a valid MaxCompute project name (those start with a letter), so it names no real project.
OTHER_PROJECT = "__other__"

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class FoldedGroups:
    """A target's groups after the fold, and how many projects were folded away."""

    groups: Mapping[GroupKey, GroupAggregate]
    folded_projects: int


def _least(values: Iterable[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def merge_groups(groups: Iterable[GroupAggregate]) -> GroupAggregate:
    """One group standing for ``groups``: sums summed, the extremes kept (least start, most
    queue), so that every sum, min and max over the merged groups is unchanged."""
    members = list(groups)
    oldest = _least(group.oldest_start_seconds for group in members)
    assert oldest is not None, "merge_groups needs at least one group"
    return GroupAggregate(
        running_jobs=sum(group.running_jobs for group in members),
        cu_ratio=sum(group.cu_ratio for group in members),
        memory_ratio=sum(group.memory_ratio for group in members),
        progress_sum=sum(group.progress_sum for group in members),
        oldest_start_seconds=oldest,
        max_queue_seconds=max(group.max_queue_seconds for group in members),
        zero_progress_jobs=sum(group.zero_progress_jobs for group in members),
        zero_progress_oldest_start_seconds=_least(
            group.zero_progress_oldest_start_seconds for group in members
        ),
    )


def _rank(group: GroupAggregate) -> tuple[float, int]:
    """Most CUs first, then most jobs (the project name breaks the remaining ties)."""
    return (-group.cu_ratio, -group.running_jobs)


def fold_by_quota(
    values: Mapping[GroupKey, V],
    max_projects: int,
    rank: Callable[[V], tuple],
    merge: Callable[[list[V]], V],
) -> tuple[dict[GroupKey, V], int]:
    """Any per-(quota, project) mapping with at most ``max_projects`` projects per quota, the
    others (lowest ``rank``, then the greater name) merged into ``__other__``; and how many
    projects were folded.

    A project literally named ``__other__`` (a hostile or odd answer) is always folded, so the
    folded series can never collide with a real one.
    """
    by_quota: dict[str, list[tuple[GroupKey, V]]] = {}
    for key, value in values.items():
        by_quota.setdefault(key.quota, []).append((key, value))
    kept: dict[GroupKey, V] = {}
    folded = 0
    for quota, members in by_quota.items():
        named = sorted(
            (m for m in members if m[0].project != OTHER_PROJECT),
            key=lambda m: (*rank(m[1]), m[0].project),
        )
        rest = [value for _, value in named[max_projects:]]
        rest += [value for key, value in members if key.project == OTHER_PROJECT]
        kept.update(named[:max_projects])
        if rest:
            kept[GroupKey(quota, OTHER_PROJECT)] = merge(rest)
            folded += len(rest)
    return dict(sorted(kept.items())), folded


def fold_projects(groups: Mapping[GroupKey, GroupAggregate], max_projects: int) -> FoldedGroups:
    """``groups`` with at most ``max_projects`` projects per quota (those holding the most
    CUs) plus one ``__other__``."""
    kept, folded = fold_by_quota(groups, max_projects, _rank, merge_groups)
    return FoldedGroups(kept, folded)
