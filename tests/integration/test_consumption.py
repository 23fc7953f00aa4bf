"""Consumption end to end, as the README tells it: the exporter as a subprocess polling the
simulator every second; with static jobs, each (quota, project)'s share-seconds grow by exactly
its summed share times the time between the polls, and the owner view splits the same CU
share-seconds by owner.

The poll times are the windows' ends the simulator was asked for, so the test knows the time
between any two polls exactly; a scrape is taken only between polls (no request for 0.3 s
before it nor during it), so it shows the last poll the simulator answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.demo.simulator import ApiSimulator, SimulatorHandler
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import values
from tests.support.jobs import job_record

KEY_ID, SECRET = "LTAIconsumption", "consumption-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
NOW = int(time.time())
CU = "maxcompute_cu_share_seconds_total"
MEMORY = "maxcompute_memory_share_seconds_total"
OWNER = "maxcompute_owner_cu_share_seconds_total"
POLLS = "maxcompute_exporter_poll_duration_seconds_count"
POLL_COUNT = (POLLS, ("region", "cn-hangzhou"))

# Static: two quotas, three projects, two owners; shares that are exact in binary.
RUNNING = {"submitted": NOW - 600, "running": NOW - 300}
JOBS = [
    job_record(
        "a", quota="etl", project="sales_dw", cu=0.5, memory=0.25, owner="RAM$etl:robot", **RUNNING
    ),
    job_record(
        "b", quota="etl", project="sales_dw", cu=0.125, memory=0.5, owner="RAM$bi:bob", **RUNNING
    ),
    job_record(
        "c", quota="etl", project="ads", cu=0.25, memory=0.125, owner="RAM$etl:robot", **RUNNING
    ),
    job_record(
        "d", quota="adhoc", project="ads", cu=0.75, memory=0.375, owner="RAM$bi:bob", **RUNNING
    ),
]
SHARES = {  # (quota, project) -> (cu, memory)
    ("etl", "sales_dw"): (0.625, 0.75),
    ("etl", "ads"): (0.25, 0.125),
    ("adhoc", "ads"): (0.75, 0.375),
}
OWNER_SHARES = {
    ("etl", "RAM$etl:robot"): 0.75,
    ("etl", "RAM$bi:bob"): 0.125,
    ("adhoc", "RAM$bi:bob"): 0.75,
}


class WindowLog:
    """When the simulator answered each GetRunningJobs request, and the window end it asked
    for. A poll's requests tile its window: the greatest end is the poll's time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[float, int]] = []

    def record(self, end: int) -> None:
        with self.lock:
            self.requests.append((time.monotonic(), end))

    def quiet(self) -> tuple[int, float]:
        """How many requests so far, and how long since the last one."""
        with self.lock:
            return len(self.requests), time.monotonic() - self.requests[-1][0]

    def last_poll_time(self) -> int:
        with self.lock:
            return max(end for _, end in self.requests)


@pytest.fixture
def simulator() -> Iterator[tuple[ApiSimulator, WindowLog]]:
    log = WindowLog()

    class RecordingHandler(SimulatorHandler):
        def _running_jobs(self, state, query):
            log.record(int(query["to"]))
            super()._running_jobs(state, query)

    sim = ApiSimulator(JOBS, credentials={KEY_ID: (SECRET, None)})
    sim.RequestHandlerClass = RecordingHandler
    sim.start()
    yield sim, log
    sim.stop()


def start(simulator: ApiSimulator, tmp: Path) -> ExporterProcess:
    config = tmp / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
        "poll:\n  interval: 1s\n  window: 1h\n  timeout: 0.5s\n"
        "metrics:\n  owner_consumption: true\n"
        "quota_poll:\n  quotas: false\n  usage: false\n"
    )
    process = ExporterProcess("--config", str(config), env=ENV)
    process.wait_until("/ready")
    return process


def settled(process: ExporterProcess, log: WindowLog) -> tuple[dict, int]:
    """A scrape taken between two polls, and the time of the last poll it shows: no request
    for 0.3 s before it (the poll that sent the last one has published) nor during it."""
    while True:
        requests, idle = log.quiet()
        if idle < 0.3:
            time.sleep(0.3 - idle)
            continue
        got = values(process.get("/metrics").text)
        if log.quiet()[0] == requests:
            return got, log.last_poll_time()


def by(got: dict, name: str, label: str) -> dict[tuple[str, str], float]:
    return {(dict(k[1:])["quota"], dict(k[1:])[label]): v for k, v in got.items() if k[0] == name}


def test_share_seconds_grow_by_the_summed_shares_times_the_time_between_polls(
    simulator: tuple[ApiSimulator, WindowLog], tmp_path: Path
) -> None:
    sim, log = simulator
    process = start(sim, tmp_path)
    try:
        first, first_at = settled(process, log)
        # Some 40 one-second polls later (a busy machine may take longer; 120 s at most).
        deadline = time.monotonic() + 120
        while True:
            last, last_at = settled(process, log)
            if last[POLL_COUNT] >= first[POLL_COUNT] + 40 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        process.stop()
    # Every poll good: a failed one would leave a gap unmeasured (test_consumption's units).
    errors = [v for k, v in last.items() if k[0] == "maxcompute_exporter_poll_errors_total"]
    assert sum(errors) == 0
    seconds = last_at - first_at
    assert seconds >= 40  # several polls apart
    for name, column in ((CU, 0), (MEMORY, 1)):
        before, after = by(first, name, "project"), by(last, name, "project")
        assert after.keys() == SHARES.keys()
        for group, shares in SHARES.items():
            increase = after[group] - before[group]
            assert increase == pytest.approx(shares[column] * seconds, rel=0.01), (name, group)
    before, after = by(first, OWNER, "owner"), by(last, OWNER, "owner")
    assert after.keys() == OWNER_SHARES.keys()
    for group, share in OWNER_SHARES.items():
        assert after[group] - before[group] == pytest.approx(share * seconds, rel=0.01), group


def test_demo_shows_consumption_growing_within_a_minute() -> None:
    process = ExporterProcess("--demo")
    try:
        process.wait_until("/ready")
        ready = time.monotonic()
        totals: list[float] = []
        while time.monotonic() - ready < 60 and not (len(totals) > 1 and totals[-1] > totals[0]):
            got = values(process.get("/metrics").text)
            total = sum(v for k, v in got.items() if k[0] == CU)
            if total > 0 and (not totals or total != totals[-1]):
                totals.append(total)
            time.sleep(0.5)
        owners = {dict(k[1:])["owner"] for k in got if k[0] == OWNER}
    finally:
        process.stop()
    # Two good polls make the first share-seconds, a third adds to them: well within a minute.
    assert len(totals) > 1 and totals[-1] > totals[0] > 0, totals
    assert owners and "__unknown__" not in owners  # the demo turns the owner view on
