"""Per quota, the projects with the most CUs keep their series; the rest sum into __other__."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.api.errors import ApiError
from exporter.api.wire.jobs import parse_job
from exporter.polling.derive.aggregation import GroupAggregate, GroupKey, aggregate
from exporter.polling.derive.project_fold import (
    OTHER_PROJECT,
    fold_by_quota,
    fold_projects,
    merge_groups,
)
from tests.support.jobs import NOW, job_record


def group(cu: float, jobs: int = 1, start: int = 100, queue: int = 5, zero: int | None = None):
    return GroupAggregate(
        running_jobs=jobs,
        cu_ratio=cu,
        memory_ratio=cu / 2,
        progress_sum=jobs * 0.5,
        oldest_start_seconds=start,
        max_queue_seconds=queue,
        zero_progress_jobs=0 if zero is None else 1,
        zero_progress_oldest_start_seconds=zero,
    )


def test_the_top_projects_by_cu_keep_their_group_and_the_rest_merge_exactly() -> None:
    groups = {
        GroupKey("q", "big"): group(0.5, jobs=2, start=300, queue=10),
        GroupKey("q", "mid"): group(0.25, jobs=3, start=200, queue=40, zero=250),
        GroupKey("q", "small"): group(0.125, jobs=1, start=100, queue=20, zero=120),
        GroupKey("q", "tiny"): group(0.0625, jobs=4, start=400, queue=30),
        GroupKey("other_quota", "alone"): group(0.03125),
    }
    folded = fold_projects(groups, 2)
    assert folded.folded_projects == 2
    assert list(folded.groups) == [
        GroupKey("other_quota", "alone"),
        GroupKey("q", OTHER_PROJECT),
        GroupKey("q", "big"),
        GroupKey("q", "mid"),
    ]
    assert folded.groups[GroupKey("q", OTHER_PROJECT)] == GroupAggregate(
        running_jobs=5,
        cu_ratio=0.1875,
        memory_ratio=0.09375,
        progress_sum=2.5,
        oldest_start_seconds=100,  # least
        max_queue_seconds=30,  # greatest
        zero_progress_jobs=1,
        zero_progress_oldest_start_seconds=120,  # least of those present
    )
    assert folded.groups[GroupKey("q", "big")] is groups[GroupKey("q", "big")]


def test_a_quota_within_the_cap_is_unchanged() -> None:
    groups = {GroupKey("q", f"p{n}"): group(0.1) for n in range(3)}
    assert fold_projects(groups, 3).groups == groups
    assert fold_projects(groups, 3).folded_projects == 0


def test_ties_are_broken_by_jobs_then_name_so_the_same_input_keeps_the_same_projects() -> None:
    groups = {
        GroupKey("q", "b"): group(0.25, jobs=1),
        GroupKey("q", "a"): group(0.25, jobs=1),
        GroupKey("q", "c"): group(0.25, jobs=2),
    }
    assert set(fold_projects(groups, 2).groups) == {
        GroupKey("q", "c"),
        GroupKey("q", "a"),
        GroupKey("q", OTHER_PROJECT),
    }


def test_a_project_named_like_the_fold_is_always_folded_never_doubled() -> None:
    groups = {GroupKey("q", OTHER_PROJECT): group(0.5), GroupKey("q", "real"): group(0.25)}
    folded = fold_projects(groups, 5)
    assert folded.groups == {
        GroupKey("q", OTHER_PROJECT): groups[GroupKey("q", OTHER_PROJECT)],
        GroupKey("q", "real"): groups[GroupKey("q", "real")],
    }
    assert folded.folded_projects == 1


def test_merging_nothing_is_refused() -> None:
    with pytest.raises(AssertionError):
        merge_groups([])


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 30),
            st.integers(0, 64),
            st.integers(1, 5),
            st.booleans(),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 8),
)
def test_sums_over_projects_and_extremes_per_quota_survive_any_fold(rows, cap) -> None:
    groups = {
        GroupKey(f"q{quota}", f"p{project}"): group(
            cu / 64, jobs, start=1000 + cu, queue=project, zero=2000 - cu if zero else None
        )
        for quota, project, cu, jobs, zero in rows
    }
    folded = fold_projects(groups, cap).groups
    for quota in {key.quota for key in groups}:
        before = [g for k, g in groups.items() if k.quota == quota]
        after = [g for k, g in folded.items() if k.quota == quota]
        assert len(after) <= cap + 1
        assert merge_groups(after) == merge_groups(before)


def test_more_quotas_than_the_limit_fail_the_aggregation_as_too_many_groups() -> None:
    records = [job_record(f"j{n}", quota=f"quota{n}", project=f"p{n}") for n in range(4)]
    jobs = [parse_job(record, NOW) for record in records]
    assert len(aggregate(jobs, max_quotas=4).groups) == 4
    with pytest.raises(ApiError) as caught:
        aggregate(jobs, max_quotas=3)
    assert caught.value.reason == "too_many_groups"
    assert str(caught.value) == (
        "the jobs name more than metrics.max_quotas_per_target (3) quotas: raise it, or list "
        "the quotas to poll in targets[].quotas"
    )


def test_any_per_project_values_fold_the_same_way_given_a_rank_and_a_merge() -> None:
    # e.g. per-project counts of jobs started: the largest keep their name, the rest add up.
    counts = {GroupKey("q", f"p{n}"): n for n in range(5)} | {GroupKey("r", "x"): 7}
    kept, folded = fold_by_quota(counts, 2, lambda count: (-count,), sum)
    assert kept == {
        GroupKey("q", OTHER_PROJECT): 0 + 1 + 2,
        GroupKey("q", "p3"): 3,
        GroupKey("q", "p4"): 4,
        GroupKey("r", "x"): 7,
    }
    assert folded == 3
