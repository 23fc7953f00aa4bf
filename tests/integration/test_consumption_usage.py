"""The cross-check of the CU-hours against GetQuotaUsage: over ten polls of a churning tenant,
each quota's projects' CU share-seconds times its maxCU (what the CU-hours recording rule
computes) add up to the integral of the ``usedCpu`` the simulator's GetQuotaUsage serves for
that quota, within the stated bound, and within 1 % in this tenant (measured: 0.06 to 0.14 %). The
bound here is generous and simple: one interval's worth of each job that started or finished
between the first and the last poll (the rule's own is half an interval for a finish the polls
saw, the job's whole run for one they never saw, under a second for a start, as
``runningAtTime`` is a whole second).

The simulator and the poller share a clock the test moves (60 s between polls); the integral
is exact, piecewise between the simulator's own events.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from exporter.config import PollSettings
from exporter.demo.churn import QUOTAS, Churn, ChurningJobs
from exporter.demo.quota_simulator import Level1Quota, QuotaCatalog, SubQuota, used_cores
from exporter.demo.simulator import ApiSimulator
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from tests.support.exposition import values_of
from tests.support.jobs import make_target
from tests.support.stack import KEY
from tests.support.tools import promtool

# In the past: the parser takes a time more than 5 minutes past the real clock as bad.
INTERVAL = 60
SETTINGS = PollSettings(
    interval=60.0, window=3600.0, page_concurrency=2, timeout=2.0, retries=0, deadline=10.0
)
MAX_CU = {"etl_quota": 400, "adhoc_quota": 200, "ml_quota": 100}
CATALOG = QuotaCatalog(
    (Level1Quota("prod", tuple(SubQuota(name, max_cu=cu) for name, cu in MAX_CU.items())),)
)
LEVEL1 = CATALOG.quotas[0]


class FrozenClock:
    """Time stands still during a poll and moves when the test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def t0() -> int:
    """The first poll's time: taken when the test starts, not at collection, so the requests'
    signing time (the real clock) stays within the simulator's allowed skew of its clock."""
    return int(time.time()) - 700


@pytest.fixture
def churn(t0: int) -> ChurningJobs:
    # 60 jobs running; one finishing and one submitted every 20 s on average, seeded.
    return ChurningJobs(60, Churn(0.05, 0.05), start=t0, spread=1800, seed=26)


def used_cpu_integral(churn: ChurningJobs, start: dict, begin: float, end: float) -> dict:
    """Per quota, the integral over [begin, end] of GetQuotaUsage's usedCpu (cores x s)."""
    running = dict(start)
    integral = dict.fromkeys(MAX_CU, 0.0)
    at = begin
    for event_at, kind, record in [*churn.events, (end, "end", {})]:
        if not begin < event_at <= end:
            continue
        jobs = list(running.values())
        for quota in MAX_CU:
            integral[quota] += used_cores(CATALOG, jobs, LEVEL1, quota) * (event_at - at)
        at = event_at
        if kind == "finished":
            running.pop(record["instanceId"], None)
        elif kind != "end":
            running[record["instanceId"]] = record
    return integral


def stated_bound(churn: ChurningJobs, polls: list[int]) -> dict:
    """Per quota, cores x s: what the rule may be off by (see the module doc)."""
    bound = dict.fromkeys(MAX_CU, 0.0)
    for event_at, _, record in churn.events:
        if polls[0] < event_at <= polls[-1]:
            quota = record["quotaNickname"]
            # Each start or finish: at most one interval's worth (a finish seen: half of it; an
            # unseen job: its run, shorter than the interval; a start: under a second).
            bound[quota] += record["cuSnapshot"] * MAX_CU[quota] * INTERVAL
    return bound


@pytest.fixture
def simulator(churn: ChurningJobs, clock: FrozenClock) -> Iterator[ApiSimulator]:
    sim = ApiSimulator(
        churn, credentials={KEY.access_key_id: (KEY.access_key_secret, None)}, clock=clock
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def clock(t0: int) -> FrozenClock:
    return FrozenClock(float(t0))


async def test_projects_cu_hours_add_up_to_the_quotas_used_cpu_integral(
    churn: ChurningJobs, clock: FrozenClock, simulator: ApiSimulator, t0: int
) -> None:
    target = make_target(simulator.url, credentials=KEY)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, clock=clock, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    poller = TargetPoller(target, SETTINGS, store, metrics.polls, clock=clock)
    polls = [t0 + INTERVAL * step for step in range(11)]
    try:
        assert await poller.poll()  # the baseline at t0
        at_baseline = {job["instanceId"]: job for job in churn.running_at(t0)}
        for at in polls[1:]:
            clock.now = at
            assert await poller.poll()
    finally:
        await poller.aclose()
    text = renderer.render().decode()
    checked = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    counted = values_of(text, "maxcompute_cu_share_seconds_total")
    core_seconds = dict.fromkeys(MAX_CU, 0.0)
    for labels, share_seconds in counted.items():
        quota = dict(labels)["quota"]
        core_seconds[quota] += share_seconds * MAX_CU[quota]
    truth = used_cpu_integral(churn, at_baseline, polls[0], polls[-1])
    bound = stated_bound(churn, polls)
    assert churn.finished > 10 and churn.submitted > 10
    assert values_of(text, "maxcompute_exporter_invalid_jobs_total") == {
        (("region", "cn-hangzhou"),): 0.0
    }
    for quota in MAX_CU:
        assert abs(core_seconds[quota] - truth[quota]) <= bound[quota], quota
        assert core_seconds[quota] == pytest.approx(truth[quota], rel=0.01), quota
    assert len({dict(labels)["project"] for labels in counted}) == 5  # every project has its own
    assert set(MAX_CU) == set(QUOTAS)
