"""A busy tenant: the exporter against a simulator whose running list moves while it is read,
and the request rate it learns from a service that throttles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.api.ratelimit import DECREASE_FACTOR, AdaptiveRate
from exporter.demo.churn import Churn, ChurningJobs
from exporter.demo.simulator import ApiSimulator, Faults
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import samples

KEY_ID, SECRET = "LTAIbusy", "busy-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}


def test_the_rate_doubles_in_slow_start_and_is_cut_on_throttling() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=50.0)
    for _ in range(50):
        rate.on_success(limited=True)
    assert rate.rate == 100.0  # one more request a second per success: doubles per second
    rate.on_throttled(scheduled_at=10.0, now=10.1)
    assert rate.rate == pytest.approx(100.0 * DECREASE_FACTOR)
    rate.on_throttled(scheduled_at=10.05, now=10.2)  # sent before the cut: already answered
    assert rate.rate == pytest.approx(70.0)
    for _ in range(70):
        rate.on_success(limited=True)
    assert rate.rate == pytest.approx(71.0, abs=0.01)  # additive: +1/s per second of requests


def test_the_rate_is_not_raised_when_it_is_not_what_holds_requests_back() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=50.0)
    for _ in range(500):
        rate.on_success(limited=False)
    assert rate.rate == 50.0


def test_the_rate_stays_within_its_ceiling_and_floor() -> None:
    rate = AdaptiveRate(ceiling=60.0, initial=50.0)
    for _ in range(100):
        rate.on_success(limited=True)
    assert rate.rate == 60.0
    for n in range(100):
        rate.on_throttled(scheduled_at=float(2 * n + 1), now=float(2 * n + 2))
    assert rate.rate == 1.0


def metric_values(text: str) -> dict[str, float]:
    values = {}
    for sample in samples(text):
        if sample.name == "maxcompute_running_jobs":
            values["jobs"] = values.get("jobs", 0) + sample.value
        elif not sample.labels or set(sample.labels) == {"region"}:
            values[sample.name] = sample.value
    return values


@pytest.fixture(params=[False, True], ids=["ascending", "descending"])
def churning(request) -> Iterator[tuple[ApiSimulator, ChurningJobs]]:
    work = ChurningJobs(4000, Churn(5.0, 5.0, descending=request.param), start=time.time())
    sim = ApiSimulator(
        work, credentials={KEY_ID: (SECRET, None)}, faults=Faults(latency=0.04)
    ).start()
    yield sim, work
    sim.stop()


def test_a_list_that_moves_is_published_on_every_poll_within_its_churn(
    churning: tuple[ApiSimulator, ChurningJobs], tmp_path: Path
) -> None:
    sim, work = churning
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {sim.url}\n"
        "poll: {interval: 5s, window: 24h, timeout: 2s}\n"
    )
    process = ExporterProcess("--config", str(config), env=ENV)
    try:
        process.wait_until("/ready", timeout=30)
        scrapes, up, checked = 0, 0, 0
        until = time.monotonic() + 20
        while time.monotonic() < until:
            values = metric_values(process.get("/metrics").text)
            scrapes += 1
            if values["maxcompute_up"] == 1:
                up += 1
                finished_at = values["maxcompute_exporter_last_success_timestamp_seconds"]
                work.running_at(time.time())
                # The poll ran at most its deadline (4.5 s) before it finished.
                fewest, most = work.bounds(finished_at - 4.5, finished_at)
                assert fewest <= values["jobs"] <= most
                checked += 1
            time.sleep(0.25)
        final = metric_values(process.get("/metrics").text)
    finally:
        process.stop()
    assert scrapes >= 40
    assert up / scrapes >= 0.99
    polls = final["maxcompute_exporter_poll_duration_seconds_count"]
    assert polls >= 4
    # Under this churn a planned poll needs few requests beyond one per page of jobs.
    assert final["maxcompute_exporter_last_poll_requests"] <= 1.5 * 4000 / 20


def test_the_learned_rate_settles_under_the_services_limit(tmp_path: Path) -> None:
    jobs = ChurningJobs(2000, Churn(), start=time.time())
    sim = ApiSimulator(jobs, credentials={KEY_ID: (SECRET, None)}, rate_limit=50.0).start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {sim.url}\n"
        "poll: {interval: 8s, window: 24h, timeout: 1s, retry_backoff: 100ms}\n"
    )
    process = ExporterProcess("--config", str(config), env=ENV)
    try:
        process.wait_until("/ready", timeout=20)
        time.sleep(12)
        values = metric_values(process.get("/metrics").text)
    finally:
        process.stop()
        sim.stop()
    assert values["maxcompute_up"] == 1
    # AIMD settles in a sawtooth below the limit: cut to 70 % on a throttle, then +1/s a second
    # (bench/busy_tenant.py measures where it settles; here: learned, and not collapsed).
    assert 0.3 * 50 <= values["maxcompute_exporter_request_rate"] <= 50.0
    assert 0 < sim.state.throttled < 0.1 * sim.state.requests
