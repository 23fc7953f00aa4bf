"""Dense seconds through ``python -m exporter``: 5 000 jobs in one second read within the first
poll's deadline, and the services that break such a read (issue 23 rows 2, 6 and 9)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exporter.demo.churn import Churn, ChurningJobs
from exporter.demo.simulator import ApiSimulator, Faults
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import samples
from tests.support.jobs import job_record

KEY_ID, SECRET = "LTAIdense", "dense-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}


def totals(text: str) -> dict[str, float]:
    """Each family's samples summed over their labels (histogram buckets left out)."""
    summed: dict[str, float] = {}
    for sample in samples(text):
        if "le" not in sample.labels:
            summed[sample.name] = summed.get(sample.name, 0.0) + sample.value
    return summed


def burst_tenant(burst: int, others: int = 500) -> ChurningJobs:
    """``others`` jobs over 6 hours and ``burst`` in one second, as schedulers fire them (four
    fifths over 40 owners in each of 3 quotas, a fifth of one robot); nothing moves."""
    now = time.time()
    work = ChurningJobs(others, Churn(), start=now, seed=5)
    work.schedulers_burst(int(now) - 900, burst, owners=40)
    return work


@pytest.fixture
def serve() -> Iterator[Callable[..., ApiSimulator]]:
    started: list[ApiSimulator] = []

    def start(jobs, **kwargs) -> ApiSimulator:
        sim = ApiSimulator(jobs, credentials={KEY_ID: (SECRET, None)}, **kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def exporter_for(sim: ApiSimulator, tmp_path: Path, poll: str) -> ExporterProcess:
    config = tmp_path / "config.yaml"
    config.write_text(f"targets:\n  - region: cn-hangzhou\n    endpoint: {sim.url}\npoll: {poll}\n")
    return ExporterProcess("--config", str(config), env=ENV)


def wait_for(process: ExporterProcess, done: Callable[[dict[str, float]], bool], seconds: float):
    """The exporter's totals once ``done`` holds for them (checked every 0.25 s)."""
    process.wait_until("/healthz", timeout=30)
    until = time.monotonic() + seconds
    while True:
        values = totals(process.get("/metrics").text)
        if done(values) or time.monotonic() > until:
            return values
        time.sleep(0.25)


def test_a_5000_job_second_at_100_ms_is_published_by_the_first_poll(serve, tmp_path: Path) -> None:
    work = burst_tenant(5000)
    sim = serve(work, faults=Faults(latency=0.1))
    process = exporter_for(sim, tmp_path, "{interval: 60s, window: 24h, timeout: 5s}")
    try:
        process.wait_until("/ready", timeout=90)
        values = totals(process.get("/metrics").text)
    finally:
        process.stop()
    assert values["maxcompute_up"] == 1
    assert values["maxcompute_exporter_poll_duration_seconds_count"] == 1
    assert values["maxcompute_exporter_poll_duration_seconds_sum"] < 54  # the deadline
    assert values["maxcompute_running_jobs"] == 5500  # exact: nothing moved
    assert values["maxcompute_exporter_last_poll_unseen_jobs"] == 0
    # Read in parts, not page by page twice: well within a small multiple of its 275 pages.
    assert values["maxcompute_exporter_last_poll_requests"] <= 3 * 5500 / 20


def test_an_order_that_changes_on_every_answer_is_published_with_its_unseen_jobs(
    serve, tmp_path: Path
) -> None:
    work = burst_tenant(2000)
    sim = serve(work, faults=Faults(unstable_order=True, seed=3))
    process = exporter_for(sim, tmp_path, "{interval: 5s, window: 24h, timeout: 2s}")
    try:
        process.wait_until("/ready", timeout=40)
        seen = []
        for polls in (1, 2, 3):
            values = wait_for(
                process,
                lambda v, n=polls: v["maxcompute_exporter_poll_duration_seconds_count"] >= n,
                20,
            )
            seen.append(values)
    finally:
        process.stop()
    for values in seen:
        assert values["maxcompute_up"] == 1
        unseen = values["maxcompute_exporter_last_poll_unseen_jobs"]
        assert unseen > 0  # the robot's 400 jobs in one second, no filter splitting them
        # Every job shown is real, and the count says exactly how many were not shown.
        assert values["maxcompute_running_jobs"] + unseen == 2500
    # Nothing started or finished: jobs unseen by one poll and shown by the next are neither.
    assert values.get("maxcompute_jobs_started_total", 0) == 0
    assert values.get("maxcompute_jobs_finished_total", 0) == 0


def test_a_service_that_ignores_the_filters_fails_as_inconsistent_in_few_requests(
    serve, tmp_path: Path
) -> None:
    sim = serve(burst_tenant(2000), faults=Faults(ignores_filters=True))
    process = exporter_for(sim, tmp_path, "{interval: 5s, window: 24h, timeout: 2s}")
    try:
        values = wait_for(process, lambda v: v["maxcompute_exporter_poll_errors_total"] >= 2, 40)
        log = process.log()
    finally:
        process.stop()
    assert values["maxcompute_up"] == 0
    assert values["maxcompute_exporter_poll_errors_total"] >= 2
    assert "does not apply quotaNicknameList/jobOwnerList" in log
    # The first page, up to 64 samples, then a few parts in flight: not ~10 000 requests.
    assert values["maxcompute_exporter_last_poll_requests"] <= 1 + 64 + 40
    assert sim.state.requests <= values["maxcompute_exporter_poll_errors_total"] * 120


class GrowingSecond:
    """A job source whose one dense second holds a page more on every request."""

    def __init__(self, second: int) -> None:
        self.second = second
        self.jobs = [job_record(f"g{n}", submitted=second, running=second) for n in range(100)]

    def __call__(self, now: float) -> list[dict]:
        start = len(self.jobs)
        more = [job_record(f"g{n}", submitted=self.second, running=self.second) for n in range(20)]
        self.jobs = self.jobs + [
            {**job, "instanceId": f"g{start + n}"} for n, job in enumerate(more)
        ]
        return self.jobs


def test_a_count_that_grows_by_a_page_on_every_page_fails_as_inconsistent(
    serve, tmp_path: Path
) -> None:
    source = GrowingSecond(int(time.time()) - 600)
    sim = serve(source)
    process = exporter_for(sim, tmp_path, "{interval: 5s, window: 24h, timeout: 2s}")
    try:
        values = wait_for(process, lambda v: v["maxcompute_exporter_poll_errors_total"] >= 2, 40)
        log = process.log()
    finally:
        process.stop()
    assert values["maxcompute_up"] == 0
    assert "rose on each of 3 answers" in log
    assert values["maxcompute_exporter_last_poll_requests"] <= 80


def test_a_record_skipped_as_invalid_is_in_no_published_family(serve, tmp_path: Path) -> None:
    now = int(time.time())
    good = [job_record(f"good-{n}", submitted=now - 60, running=now - 50) for n in range(5)]
    sim = serve(good)
    honest = sim.state.matching
    far_future = job_record("x-future", submitted=9_999_999_999, running=now - 50)

    def lying(start: int, end: int, owners: frozenset, quotas: frozenset) -> list[dict]:
        listed = honest(start, end, owners, quotas)
        return [*listed, far_future] if end >= time.time() - 10 else listed

    sim.state.matching = lying  # the newest slice's answers hold a job "submitted" in 2286
    process = exporter_for(sim, tmp_path, "{interval: 2s, window: 1h, timeout: 1s}")
    try:
        values = wait_for(
            process, lambda v: v["maxcompute_exporter_poll_duration_seconds_count"] >= 3, 30
        )
    finally:
        process.stop()
    polls = values["maxcompute_exporter_poll_duration_seconds_count"]
    assert values["maxcompute_up"] == 1
    assert values["maxcompute_exporter_invalid_jobs_total"] >= polls - 1  # once per poll read
    assert values["maxcompute_running_jobs"] == 5
    assert values["maxcompute_running_jobs_run_time_seconds_gcount"] == 5
    assert values.get("maxcompute_jobs_started_total", 0) == 0
    assert values.get("maxcompute_jobs_finished_total", 0) == 0
