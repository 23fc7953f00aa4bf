"""Jobs over time against a loopback API that misbehaves (issue 23, rows 4, 5 and 15).

- Quota names that change on every poll: the counters hold at most ``max_quotas_per_target``
  quotas (plus ``__other__``), a quota gone for ``counter_retention`` is no longer exported.
- A project that starts running jobs after the first poll gets counters of its own once a slot
  is free, the one it replaces frozen until the retention drops it; sums stay exact.
- A job present, absent, present: one start, one finish, the rest counted as reappeared; a
  ``runningAtTime`` in the future is clamped to the poll's time.

The poller's clock is the test's to move (60 s a poll); the simulator serves the jobs set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from exporter.config import PollSettings
from exporter.demo.simulator import ApiSimulator
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.derive.counter_fold import OTHER, FoldLimits
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from tests.support.exposition import samples, values_of
from tests.support.jobs import job_record, make_target
from tests.support.stack import KEY

# Polls of the first two tests run at T0 + up to 62 minutes: still in the past, so no time is
# taken for one in the future (the parser clamps those to the answer's real clock).
T0 = int(time.time()) - 7200
SETTINGS = PollSettings(
    interval=60.0, window=3600.0, page_concurrency=4, timeout=2.0, retries=0, deadline=20.0
)
FAMILIES = (
    "maxcompute_jobs_started_total",
    "maxcompute_jobs_finished_total",
    "maxcompute_job_queue_wait_seconds",
    "maxcompute_job_run_seconds",
)


class Rig:
    """A simulator serving the jobs a test sets, one target polling it, the clock in hand."""

    def __init__(self, limits: FoldLimits, settings: PollSettings = SETTINGS) -> None:
        self.now = float(T0)
        # The simulator checks request signatures against real time; the windows asked for
        # follow the poller's clock, which the test moves.
        self.simulator = ApiSimulator(
            [], credentials={KEY.access_key_id: (KEY.access_key_secret, None)}, clock=time.time
        )
        self.simulator.start()
        target = make_target(self.simulator.url, credentials=KEY)
        store = SnapshotStore((target,))
        self.metrics = ExporterMetrics(
            store, (target,), (), settings.interval, clock=self.clock, process_metrics=False,
            counter_limits=limits, max_staleness=float("inf"),
        )  # fmt: skip
        self.renderer = MetricsRenderer(store, self.metrics)
        self.poller = TargetPoller(target, settings, store, self.metrics.polls, clock=self.clock)

    def clock(self) -> float:
        return self.now

    async def poll(self, at: float, jobs: list[dict]) -> None:
        self.now = at
        self.simulator.set_jobs(jobs)
        assert await self.poller.poll()

    def text(self) -> str:
        return self.renderer.render().decode()

    async def close(self) -> None:
        await self.poller.aclose()
        self.simulator.stop()


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.simulator.stop()


def by(text: str, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: value for key, value in values_of(text, name).items()}


def counter_series(text: str) -> int:
    """Samples of the four jobs-over-time families (the series Prometheus would store)."""
    return sum(1 for s in samples(text) if s.name.startswith(FAMILIES))


async def test_quota_names_that_change_on_every_poll_hold_bounded_series(rigs) -> None:
    rig = Rig(FoldLimits(max_quotas=100, max_projects=500, retention=3600))
    rigs.append(rig)
    try:
        for n in range(63):  # the 63 polls; 100 jobs a poll, each in a new quota
            at = T0 + 60 * n
            jobs = [
                job_record(f"j{n}-{k}", quota=f"r{n}q{k}", project=f"p{k % 7}",
                           submitted=at - 30, running=at - 20)
                for k in range(100)
            ]  # fmt: skip
            await rig.poll(at, jobs)
        text = rig.text()
    finally:
        await rig.close()
    # Named: the 100 quotas of poll 61, the first poll after those of poll 0 (last counted at
    # poll 1) had been gone an hour; each has 2 counters and 18 + 16 histogram series, so has
    # the one __other__ quota. Without the bound: 63 x 100 quotas, 226 800 series.
    assert counter_series(text) == 101 * 36
    quotas = by(text, "maxcompute_jobs_finished_total", "quota")
    assert len(quotas) == 101 and all(q.startswith("r61q") for q in quotas if q != OTHER)
    assert len(text.encode()) < 1024 * 1024
    started = values_of(text, "maxcompute_jobs_started_total")
    finished = values_of(text, "maxcompute_jobs_finished_total")
    # Every start after the baseline went to __other__ (new quotas, no free slot, or named at
    # the end of their first poll); finishes of polls 2..61 too. Those of poll 1 were counted
    # under the first quotas' names, since dropped; those of poll 62 under poll 61's quotas.
    assert by(text, "maxcompute_jobs_started_total", "quota")[OTHER] == 62 * 100
    assert sum(started.values()) == 62 * 100
    assert by(text, "maxcompute_jobs_finished_total", "quota")[OTHER] == 60 * 100
    assert sum(finished.values()) == 61 * 100
    assert values_of(text, "maxcompute_job_queue_wait_seconds_count")[
        (("quota", OTHER), ("region", "cn-hangzhou"))
    ] == 62 * 100  # fmt: skip


async def test_a_project_busy_after_the_first_poll_gets_its_own_counters(rigs) -> None:
    """Two projects named at the first poll keep a job running; a third starts a job every
    poll. At the first re-choice (180 s) the quieter named one is frozen; when its retention
    ends, the busy one is named, at 0, and counts under its name from the next poll."""
    rig = Rig(FoldLimits(max_quotas=10, max_projects=2, retention=180))
    rigs.append(rig)
    long_a = job_record("a1", project="a", submitted=T0 - 600, running=T0 - 500)
    long_b = job_record("b1", project="b", submitted=T0 - 600, running=T0 - 500)
    fresh: list[dict] = []
    seen = []
    try:
        for n in range(9):
            at = T0 + 60 * n
            if n:
                fresh.append(job_record(f"f{n}", project="fresh", submitted=at - 5, running=at))
            # b's job ends at 240 s, while b is frozen: that finish counts under __other__.
            await rig.poll(at, [long_a, *([long_b] if n < 4 else []), *fresh])
            text = rig.text()
            seen.append(by(text, "maxcompute_jobs_started_total", "project"))
        finished = by(text, "maxcompute_jobs_finished_total", "project")
    finally:
        await rig.close()
    assert seen[0] == {"a": 0, "b": 0}
    assert seen[1] == {"a": 0, "b": 0, OTHER: 1}
    # At 180 s, b (no job started) is frozen and keeps its series until 360 s.
    assert seen[5] == {"a": 0, "b": 0, OTHER: 5}
    # 360 s: b dropped, fresh named at 0 (this poll's start still under __other__).
    assert seen[6] == {"a": 0, "fresh": 0, OTHER: 6}
    assert seen[8] == {"a": 0, "fresh": 2, OTHER: 6}
    assert sum(seen[8].values()) == 8  # every start since the baseline, once
    assert finished == {"a": 0, "fresh": 0, OTHER: 1}


async def test_a_flapping_job_starts_once_and_a_future_start_is_clamped(rigs) -> None:
    """Issue 23, row 15: present, absent, present every 2 s for 20 s; a job listed running
    from minutes in the future, submitted 5 s before the poll."""
    settings = PollSettings(interval=2.0, window=3600.0, timeout=2.0, retries=0, deadline=1.5)
    rig = Rig(FoldLimits(), settings)
    rigs.append(rig)
    t0 = int(time.time())
    steady = job_record("steady", submitted=t0 - 100, running=t0 - 100)
    flapping = job_record("flap", submitted=t0 - 50, running=t0 - 40)
    try:
        for n in range(11):
            await rig.poll(t0 + 2 * n, [steady, *([flapping] if n % 2 else [])])
        text = rig.text()
        # Submitted 5 s before the poll, listed running from 250 s after it (within the
        # parser's 5 minutes of skew, so the read lets it through as it is).
        future = job_record("future", submitted=t0 + 17, running=t0 + 272)
        await rig.poll(t0 + 22, [steady, future])
        later = rig.text()
    finally:
        await rig.close()
    group = (("project", "sales_dw"), ("quota", "etl_quota"), ("region", "cn-hangzhou"))
    # Seen at 2 s (started), gone at 4 s (finished), back at 6, 10, 14 and 18 s: reappeared.
    assert values_of(text, "maxcompute_jobs_started_total") == {group: 1.0}
    assert values_of(text, "maxcompute_jobs_finished_total") == {group: 1.0}
    assert values_of(text, "maxcompute_exporter_reappeared_jobs_total") == {
        (("region", "cn-hangzhou"),): 4.0
    }
    assert values_of(later, "maxcompute_jobs_started_total") == {group: 2.0}
    # Its start clamped to the poll's time: it waited 5 s (255 s as it was listed).
    assert values_of(later, "maxcompute_running_jobs_max_queue_seconds")[group] == 5.0
    quota = (("quota", "etl_quota"), ("region", "cn-hangzhou"))
    # The flapping job waited 10 s, the future one 5 s.
    assert values_of(later, "maxcompute_job_queue_wait_seconds_sum")[quota] == 15.0
