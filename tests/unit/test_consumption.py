"""Consumption: jobs' shares integrated between good polls, and the counters they become.

Given the jobs of successive polls of a target, each (quota, project) used this many
share-seconds: exactly for jobs whose share stays put, within the stated bound for jobs that
finish between two polls, and nothing for the time a failed poll left unmeasured.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.metrics.consumption import ConsumptionMetrics
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.derive.consumption import (
    ConsumptionTracker,
    Gap,
    SharePoll,
    consumption,
)
from exporter.polling.derive.counter_fold import FoldLimits
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.observer import PollOutcome
from tests.support.exposition import values_of
from tests.support.jobs import NOW, make_target

PROD = make_target(labels=(("account", "prod"),))
CU = "maxcompute_cu_share_seconds_total"
MEMORY = "maxcompute_memory_share_seconds_total"
OWNER = "maxcompute_owner_cu_share_seconds_total"
UNMEASURED = "maxcompute_exporter_consumption_unmeasured_seconds_total"
BOUND = "maxcompute_exporter_consumption_cu_share_seconds_bound_total"


def job(
    instance_id: str,
    cu: float,
    *,
    memory: float = 0.0,
    running: int = NOW - 900,
    quota: str = "etl",
    project: str = "dw",
    owner: str = "ALIYUN$a@x",
) -> RunningJob:
    return RunningJob(
        instance_id, project, quota, cu, memory, 0.5, running - 10, running, owner=owner
    )


class Counted:
    """A ConsumptionMetrics on its own registry, fed polls at given times."""

    def __init__(self, metrics: ConsumptionMetrics | None = None, target=PROD) -> None:
        self.metrics = metrics or ConsumptionMetrics(("account",), 60.0)
        self.target = target
        self.registry = CollectorRegistry()
        self.registry.register(self.metrics)

    def poll(self, at: int, *jobs: RunningJob) -> None:
        self.metrics.poll_published(self.target, TimeSlice(at - 3600, at), iter(jobs))

    def fail(self) -> None:
        self.metrics.poll_failed(self.target)

    def values(self, name: str) -> dict[tuple, float]:
        return values_of(generate_latest(self.registry).decode(), name)


def group(quota: str = "etl", project: str = "dw") -> tuple:
    return (
        ("account", "prod"),
        ("project", project),
        ("quota", quota),
        ("region", "cn-hangzhou"),
    )


def test_static_jobs_add_exactly_their_shares_times_the_time_between_polls() -> None:
    counted = Counted()
    steady = [job("a", 0.25, memory=0.125), job("b", 0.5, memory=0.25, project="bi")]
    counted.poll(NOW, *steady)
    assert counted.values(CU) == {group(): 0.0, group(project="bi"): 0.0}  # the baseline
    counted.poll(NOW + 60, *steady)
    counted.poll(NOW + 150, *steady)
    assert counted.values(CU) == {group(): 0.25 * 150, group(project="bi"): 0.5 * 150}
    assert counted.values(MEMORY) == {group(): 0.125 * 150, group(project="bi"): 0.25 * 150}
    assert counted.values(BOUND) == {group()[:1] + group()[3:]: 0.0}
    assert counted.values(UNMEASURED) == {(("account", "prod"), ("region", "cn-hangzhou")): 0.0}


def test_a_share_that_changes_between_polls_adds_the_trapezoid() -> None:
    added = consumption(
        SharePoll.of(NOW, [job("a", 0.2, memory=0.1)]),
        SharePoll.of(NOW + 60, [job("a", 0.4, memory=0.3)]),
    )
    assert added.groups == {("etl", "dw"): (pytest.approx(18.0), pytest.approx(12.0))}


def test_a_job_that_started_between_polls_counts_from_its_running_at_time() -> None:
    counted = Counted()
    counted.poll(NOW)
    counted.poll(NOW + 60, job("late", 0.5, memory=0.25, running=NOW + 40))
    # Exact while its share stayed put since it started: 0.5 x 20 s.
    assert counted.values(CU) == {group(): 10.0}
    assert counted.values(MEMORY) == {group(): 5.0}


def test_a_job_that_came_into_view_with_an_older_start_counts_from_the_last_poll() -> None:
    added = consumption(SharePoll.of(NOW, []), SharePoll.of(NOW + 60, [job("old", 0.5)]))
    assert added.groups == {("etl", "dw"): (30.0, 0.0)}
    assert added.owners == {("etl", "ALIYUN$a@x"): 30.0}


@pytest.mark.parametrize("finished_after", [1, 15, 30, 45, 60])
def test_a_job_that_finished_between_polls_counts_half_the_interval_within_the_bound(
    finished_after: int,
) -> None:
    counted = Counted()
    counted.poll(NOW, job("ending", 0.3))
    counted.poll(NOW + 60)
    (counted_cu,) = counted.values(CU).values()
    (bound,) = counted.values(BOUND).values()
    assert counted_cu == pytest.approx(9.0)
    assert bound == pytest.approx(9.0)
    truth = 0.3 * finished_after
    assert abs(counted_cu - truth) <= bound + 1e-9


def test_a_failed_poll_between_leaves_the_gap_unmeasured_and_counts_nothing_twice() -> None:
    counted = Counted()
    steady = job("a", 0.5)
    counted.poll(NOW, steady)
    counted.poll(NOW + 60, steady)
    counted.fail()
    counted.poll(NOW + 180, steady, job("late", 1.0, running=NOW + 100))
    # The 120 s after the last good poll are not filled in: still 0.5 x 60.
    assert counted.values(CU) == {group(): 30.0}
    assert counted.values(UNMEASURED) == {(("account", "prod"), ("region", "cn-hangzhou")): 120.0}
    counted.fail()
    counted.fail()  # two failures in a row are one gap
    counted.poll(NOW + 240, steady, job("late", 1.0, running=NOW + 100))
    counted.poll(NOW + 300, steady, job("late", 1.0, running=NOW + 100))
    assert counted.values(CU) == {group(): 30.0 + 1.5 * 60}
    assert counted.values(UNMEASURED) == {(("account", "prod"), ("region", "cn-hangzhou")): 180.0}


def test_a_failed_first_poll_changes_nothing_the_first_good_one_is_the_baseline() -> None:
    tracker = ConsumptionTracker()
    tracker.interrupt(PROD)
    assert tracker.observe(PROD, SharePoll.of(NOW, [job("a", 1.0)])) is None
    added = tracker.observe(PROD, SharePoll.of(NOW + 60, [job("a", 1.0)]))
    assert not isinstance(added, Gap) and added is not None
    assert added.groups == {("etl", "dw"): (60.0, 0.0)}


def test_projects_past_the_limit_count_under_other_and_the_sums_stay_exact() -> None:
    counted = Counted(ConsumptionMetrics(("account",), 60.0, limits=FoldLimits(max_projects=2)))
    jobs = [job(name, 0.125, project=name) for name in ("p1", "p2", "p3", "__other__")]
    counted.poll(NOW, *jobs)
    counted.poll(NOW + 80, *jobs)
    assert counted.values(CU) == {
        group(project="p1"): 10.0,
        group(project="p2"): 10.0,
        group(project="__other__"): 20.0,
    }


def test_quotas_past_the_limit_count_under_other_other() -> None:
    counted = Counted(ConsumptionMetrics(("account",), 60.0, limits=FoldLimits(max_quotas=1)))
    jobs = [job("a", 0.5, quota="etl"), job("b", 0.25, quota="zz_adhoc")]
    counted.poll(NOW, *jobs)
    counted.poll(NOW + 40, *jobs)
    assert counted.values(CU) == {group(): 20.0, group("__other__", "__other__"): 10.0}


def test_a_group_neither_counted_nor_seen_for_the_retention_is_dropped() -> None:
    counted = Counted(ConsumptionMetrics(("account",), 60.0, limits=FoldLimits(retention=600)))
    counted.poll(NOW, job("a", 0.5), job("b", 0.5, project="bi"))
    counted.poll(NOW + 60, job("a", 0.5))  # b finished: half the interval, 15
    assert counted.values(CU) == {group(): 30.0, group(project="bi"): 15.0}
    counted.poll(NOW + 700, job("a", 0.5))
    assert counted.values(CU) == {group(): 30.0 + 320.0}


def test_the_owner_view_is_off_by_default() -> None:
    counted = Counted()
    counted.poll(NOW, job("a", 1.0))
    assert counted.values(OWNER) == {}
    assert OWNER not in generate_latest(counted.registry).decode()


def test_the_owner_view_counts_by_owner_capped_per_quota() -> None:
    counted = Counted(ConsumptionMetrics(("account",), 60.0, owners=True, max_owners=2))
    jobs = [
        job("a", 0.5, owner="ALIYUN$a@x"),
        job("b", 0.25, owner=""),
        job("c", 0.125, owner="RAM$dataworks"),
        job("d", 0.125, owner="RAM$other", quota="adhoc"),
    ]
    counted.poll(NOW, *jobs)
    counted.poll(NOW + 40, *jobs)

    def owner(name: str, quota: str = "etl") -> tuple:
        return (("account", "prod"), ("owner", name), ("quota", quota), ("region", "cn-hangzhou"))

    # The counters' fold names the first round's owners in name order while there is room;
    # the job without an owner counts as __unknown__, folded here into __other__.
    assert counted.values(OWNER) == {
        owner("ALIYUN$a@x"): 20.0,
        owner("RAM$dataworks"): 5.0,
        owner("__other__"): 10.0,
        owner("RAM$other", "adhoc"): 5.0,
    }


def test_a_reload_hands_the_last_poll_on_and_a_changed_target_starts_from_a_baseline() -> None:
    before = Counted()
    before.poll(NOW, job("a", 0.5))
    tracker = before.metrics.tracker
    tracker.retain([PROD])
    after = Counted(ConsumptionMetrics(("account",), 60.0, tracker))
    after.poll(NOW + 60, job("a", 0.5))
    assert after.values(CU) == {group(): 30.0}
    changed = make_target(labels=(("account", "staging"),))
    tracker.retain([changed])
    renamed = Counted(ConsumptionMetrics(("account",), 60.0, tracker), target=changed)
    renamed.poll(NOW + 120, job("a", 0.5))
    assert set(renamed.values(CU).values()) == {0.0}


# Random poll sequences: a pool of jobs, each step a failed poll or a good one seeing some of
# them (shares drawn per poll), at increasing times.
JOB_POOL = [(f"j{n}", f"q{n % 2}", f"p{n % 5}", f"o{n % 3}") for n in range(10)]
steps = st.lists(
    st.one_of(
        st.none(),
        st.tuples(
            st.integers(1, 600),
            st.lists(
                st.tuples(st.sampled_from(range(len(JOB_POOL))), st.floats(0, 2), st.floats(0, 2)),
                max_size=10,
            ),
        ),
    ),
    max_size=12,
)


def run(steps_: list, metrics: ConsumptionMetrics, rename: bool = False) -> list[dict]:
    counted, at, seen = Counted(metrics), NOW, []
    for step in steps_:
        if step is None:
            counted.fail()
            continue
        at += step[0]
        jobs = {}
        for index, cu, memory in step[1]:
            instance, quota, project, owner = JOB_POOL[index]
            jobs[instance] = job(
                instance,
                cu,
                memory=memory,
                quota=quota,
                project="all" if rename else project,
                owner=owner,
                running=at - 300 + index * 60,
            )
        counted.poll(at, *jobs.values())
        seen.append(
            counted.values(CU) | {("memory", *k): v for k, v in counted.values(MEMORY).items()}
        )
        seen[-1] |= {("owner", *k): v for k, v in counted.values(OWNER).items()}
    return seen


def per_quota(values: dict[tuple, float], kind: str | None) -> dict[str, float]:
    sums: dict[str, float] = {}
    for key, value in values.items():
        if (key[0] if isinstance(key[0], str) else None) != kind:
            continue
        quota = dict(key[1:] if kind else key)["quota"]
        sums[quota] = sums.get(quota, 0.0) + value
    return sums


@settings(max_examples=60, deadline=None)
@given(steps)
def test_counters_never_decrease_and_sum_over_projects_and_owners_to_the_quotas(steps_) -> None:
    folded = run(
        steps_,
        ConsumptionMetrics(
            (), 60.0, limits=FoldLimits(max_projects=2, retention=86400), owners=True, max_owners=1
        ),
    )
    whole = run(steps_, ConsumptionMetrics((), 60.0), rename=True)
    for earlier, later in itertools.pairwise(folded):
        for key, value in earlier.items():
            assert later[key] >= value
    for mine, quota_total in zip(folded, whole, strict=True):
        for kind in (None, "memory"):
            expected = per_quota(quota_total, kind)
            got = per_quota(mine, kind)
            assert got.keys() == expected.keys()
            for quota, value in expected.items():
                assert math.isclose(got[quota], value, rel_tol=1e-9, abs_tol=1e-9)
        owners = per_quota(mine, "owner")
        for quota, value in per_quota(quota_total, None).items():
            assert math.isclose(owners[quota], value, rel_tol=1e-9, abs_tol=1e-9)


def test_the_pollers_observer_tells_consumption_of_a_failed_poll() -> None:
    target = make_target()
    metrics = ExporterMetrics(SnapshotStore((target,)), (target,), (), 60.0, process_metrics=False)
    steady = job("a", 0.5)
    metrics.polls.poll_published(target, TimeSlice(NOW - 3600, NOW), iter([steady]))
    metrics.polls.poll_ended(target, PollOutcome(1.0, 3, 0, 10.0, failure="server_error"))
    metrics.polls.poll_published(target, TimeSlice(NOW - 3540, NOW + 60), iter([steady]))
    metrics.polls.poll_ended(target, PollOutcome(1.0, 3, 0, 10.0))  # a good one: no gap
    metrics.polls.poll_published(target, TimeSlice(NOW - 3480, NOW + 120), iter([steady]))
    text = generate_latest(metrics.self_registry).decode()
    region = (("region", "cn-hangzhou"),)
    assert values_of(text, UNMEASURED) == {region: 60.0}
    assert values_of(text, CU) == {(("project", "dw"), ("quota", "etl"), *region): 30.0}


def test_quota_names_that_change_on_every_poll_hold_bounded_series() -> None:
    limits = FoldLimits(max_quotas=3, max_projects=2, retention=600)
    counted = Counted(ConsumptionMetrics(("account",), 60.0, limits=limits, owners=True))
    for step in range(50):
        renamed = [job(f"j{step}-{n}", 0.25, quota=f"q{step}", project=f"p{n}") for n in range(4)]
        counted.poll(NOW + 60 * step, *renamed)
    # At most 3 quotas x (2 projects + __other__) + (__other__, __other__) per family.
    assert 0 < len(counted.values(CU)) <= limits.most_series
    assert len(counted.values(MEMORY)) == len(counted.values(CU))
    assert 0 < len(counted.values(OWNER)) <= 3 * (20 + 1) + 1
