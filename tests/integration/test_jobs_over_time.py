"""Jobs over time, end to end: the churning simulator's finishes, submissions and late starts
become exactly its counts in ``maxcompute_jobs_*_total``, and the known waits and runs in the
histograms' ``_count`` and ``_sum``; a failed poll in between changes nothing.

The simulator and the poller share a clock the test moves (60 s between polls), so what each
poll sees is exactly the simulator's running list at that second.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator

import pytest

from exporter.config import PollSettings
from exporter.demo.churn import Churn, ChurningJobs
from exporter.demo.simulator import ApiSimulator, Faults
from exporter.metrics.registries import ExporterMetrics, PollReports
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from tests.support.exposition import values_of
from tests.support.jobs import make_target
from tests.support.stack import KEY
from tests.support.tools import promtool

T0 = int(time.time())
SETTINGS = PollSettings(
    interval=60.0, window=3600.0, page_concurrency=2, timeout=2.0, retries=0, deadline=10.0
)


class FrozenClock:
    """Time stands still during a poll and moves when the test says."""

    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def churn() -> ChurningJobs:
    # 30 jobs running; one finishing and one submitted every 20 s on average, seeded.
    jobs = ChurningJobs(30, Churn(0.05, 0.05), start=T0, spread=1800, seed=19)
    # Jobs waiting for CUs, listed only once they run: one queued before the baseline, one
    # starting during the failed poll's gap, one starting just before the last poll.
    jobs.queue(T0 - 100, T0 + 30)
    jobs.queue(T0 + 50, T0 + 150)
    jobs.queue(T0 + 10, T0 + 235)
    return jobs


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def simulator(churn: ChurningJobs, clock: FrozenClock) -> Iterator[ApiSimulator]:
    sim = ApiSimulator(
        churn, credentials={KEY.access_key_id: (KEY.access_key_secret, None)}, clock=clock
    )
    sim.start()
    yield sim
    sim.stop()


def running_at(churn: ChurningJobs, at: float, before: dict[str, dict]) -> dict[str, dict]:
    """The jobs running at ``at``, replayed from the simulator's event log."""
    running = dict(before)
    for event_at, kind, record in churn.events:
        if event_at <= at:
            if kind == "finished":
                running.pop(record["instanceId"], None)
            else:
                running[record["instanceId"]] = record
    return running


def expected(churn: ChurningJobs, baseline: dict[str, dict], polls: list[int]) -> dict:
    """Starts and finishes between the good polls ``polls``, their waits and runs."""
    started, finished, waits, runs = 0, 0, 0, 0
    seen = baseline
    for last, now in itertools.pairwise(polls):
        current = running_at(churn, now, baseline)
        for instance_id in current.keys() - seen.keys():
            started += 1
            record = current[instance_id]
            waits += record["runningAtTime"] - record["submittedAtTime"]
        for instance_id in seen.keys() - current.keys():
            finished += 1
            runs += last - seen[instance_id]["runningAtTime"]
        seen = current
    return {"started": started, "finished": finished, "waits": waits, "runs": runs}


def never_seen(churn: ChurningJobs, polls: list[int]) -> int:
    """Jobs that started and finished between two good polls: no poll saw them running."""
    starts = {r["instanceId"]: at for at, kind, r in churn.events if kind != "finished"}
    unseen = 0
    for finished_at, kind, record in churn.events:
        started_at = starts.get(record["instanceId"])
        if kind == "finished" and started_at is not None:
            unseen += not any(started_at <= poll < finished_at for poll in polls)
    return unseen


def total(text: str, name: str) -> float:
    return sum(values_of(text, name).values())


async def test_counters_and_histograms_equal_the_simulators_counts_since_the_baseline(
    churn: ChurningJobs, clock: FrozenClock, simulator: ApiSimulator
) -> None:
    target = make_target(simulator.url, credentials=KEY)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, clock=clock, process_metrics=False)
    renderer = MetricsRenderer(store, metrics)
    poller = TargetPoller(target, SETTINGS, store, metrics.polls, clock=clock)
    try:
        assert await poller.poll()  # the baseline at T0
        baseline = {job["instanceId"]: job for job in churn.running_at(T0)}
        before = (churn.submitted, churn.started_late, churn.finished)
        text = renderer.render().decode()
        assert total(text, "maxcompute_jobs_started_total") == 0
        assert total(text, "maxcompute_jobs_finished_total") == 0
        good = [T0]
        for step in range(1, 5):
            clock.now = T0 + 60 * step
            failing = step == 2
            simulator.set_faults(Faults(server_error=1.0) if failing else Faults())
            assert await poller.poll() is not failing
            if not failing:
                good.append(T0 + 60 * step)
    finally:
        await poller.aclose()
    text = renderer.render().decode()
    truth = expected(churn, baseline, good)
    submitted, started_late, finished = (
        churn.submitted - before[0],
        churn.started_late - before[1],
        churn.finished - before[2],
    )
    # With this seed one job is submitted and finishes between two polls: never seen, as the
    # README's limits say. Every other start and finish is counted.
    unseen = never_seen(churn, good)
    assert unseen == 1
    assert started_late == 3 and submitted > 5 and finished > 5
    assert (truth["started"], truth["finished"]) == (
        submitted + started_late - unseen,
        finished - unseen,
    )
    assert total(text, "maxcompute_jobs_started_total") == truth["started"]
    assert total(text, "maxcompute_jobs_finished_total") == truth["finished"]
    assert total(text, "maxcompute_job_queue_wait_seconds_count") == truth["started"]
    # Waits: 130 s, 100 s and 225 s for the queued jobs, 0 for the others.
    assert total(text, "maxcompute_job_queue_wait_seconds_sum") == truth["waits"] == 455
    assert total(text, "maxcompute_job_run_seconds_count") == truth["finished"]
    assert total(text, "maxcompute_job_run_seconds_sum") == truth["runs"]
    checked = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


class BrokenStep(PollReports):
    """Jobs over time with a defect: comparing polls raises."""

    def poll_published(self, target, window, jobs, unseen=()) -> None:
        raise ZeroDivisionError("a defect in the derived step")


async def test_a_defect_in_the_derived_step_neither_undoes_the_poll_nor_escapes(
    clock: FrozenClock, simulator: ApiSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    target = make_target(simulator.url, credentials=KEY)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, clock=clock, process_metrics=False)
    broken = BrokenStep(metrics.polls.polls, metrics.job_changes)
    poller = TargetPoller(target, SETTINGS, store, broken, clock=clock)
    try:
        assert await poller.poll()
    finally:
        await poller.aclose()
    assert store.status(target).up and store.status(target).snapshot.jobs == 30  # at T0
    assert "comparing the poll with the last one failed" in caplog.text
