"""Fault injection against the simulator: the exporter stays up and its numbers are exactly
right, or marked down and then dropped as stale, with counters saying what happened."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from exporter.config import PollSettings
from exporter.demo.simulator import ApiSimulator, Faults
from tests.support.jobs import job_record
from tests.support.stack import JOBS, KEY, NOW, TRUTH, Stack


@pytest.fixture
def simulator() -> Iterator[ApiSimulator]:
    sim = ApiSimulator(JOBS, credentials={KEY.access_key_id: (KEY.access_key_secret, None)})
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
async def stack(simulator: ApiSimulator) -> Iterator[Stack]:
    built = Stack(simulator)
    yield built
    await built.poller.aclose()


def errors(values: dict) -> dict[str, float]:
    return {
        k[1]: v for k, v in values.items() if k[0] == "maxcompute_exporter_poll_errors_total" and v
    }


def requests(values: dict) -> dict[str, float]:
    return {k[1]: v for k, v in values.items() if k[0] == "maxcompute_exporter_api_requests_total"}


async def test_a_clean_poll_is_exactly_right(stack: Stack) -> None:
    assert await stack.poller.poll()
    values = stack.scrape()
    assert {k: values[k] for k in TRUTH} == TRUTH
    assert values[("maxcompute_up",)] == 1
    first = values[("maxcompute_exporter_last_poll_requests",)]
    assert requests(values) == {"200": first}
    assert errors(values) == {}
    # The next poll reads the plan the first one left: 30 + 20 jobs in three slices of a page.
    assert await stack.poller.poll()
    values = stack.scrape()
    assert values[("maxcompute_exporter_last_poll_requests",)] == 3
    assert requests(values) == {"200": first + 3}
    assert {k: values[k] for k in TRUTH} == TRUTH


@pytest.mark.parametrize(
    ("faults", "reason", "codes"),
    [
        (Faults(throttle=1.0), "throttled", {"429": 3}),
        (Faults(server_error=1.0), "server_error", {"503": 3}),
        (Faults(disconnect=1.0), "connection", {"connection_error": 3}),
        (Faults(latency=0.7), "timeout", {"timeout": 3}),
    ],
    ids=["throttling", "5xx", "disconnect", "latency"],
)
async def test_a_persistent_fault_marks_the_target_down_and_keeps_the_last_good_numbers(
    stack: Stack, simulator: ApiSimulator, faults: Faults, reason: str, codes: dict
) -> None:
    assert await stack.poller.poll()
    good = requests(stack.scrape())["200"]
    simulator.set_faults(faults)
    assert not await stack.poller.poll()
    values = stack.scrape()
    assert values[("maxcompute_up",)] == 0
    assert {k: values[k] for k in TRUTH} == TRUTH  # the last good poll, marked by up == 0
    assert errors(values) == {reason: 1}
    # Each slice in flight tried once and retried twice before the poll gave up.
    ((code, least),) = codes.items()
    failed = requests(values)
    # Requests still in flight when the poll's deadline came are counted as cancelled.
    assert set(failed) - {"cancelled"} == {"200", code}
    assert failed["200"] == good
    assert failed[code] >= least
    simulator.set_faults(Faults())
    assert await stack.poller.poll()
    assert stack.scrape()[("maxcompute_up",)] == 1


@pytest.mark.parametrize(
    "faults",
    [
        Faults(throttle=0.3, seed=3),
        Faults(server_error=0.3, seed=4),
        Faults(disconnect=0.3, seed=5),
    ],
    ids=["throttling", "5xx", "disconnect"],
)
async def test_intermittent_faults_are_retried_and_the_numbers_stay_exact(
    stack: Stack, simulator: ApiSimulator, faults: Faults
) -> None:
    simulator.set_faults(faults)
    results = [await stack.poller.poll() for _ in range(5)]
    values = stack.scrape()
    assert any(results)
    assert {k: values[k] for k in TRUTH} == TRUTH
    retried = sum(v for code, v in requests(values).items() if code != "200")
    assert retried > 0
    assert values[("maxcompute_up",)] == (1 if results[-1] else 0)


async def test_malformed_records_are_skipped_counted_and_the_rest_is_exact(
    simulator: ApiSimulator,
) -> None:
    recent = NOW - 100
    broken = [
        {**job_record("bad-1", project="sales", quota="etl", submitted=recent), "cuSnapshot": None},
        {
            **job_record("bad-2", project="sales", quota="etl", submitted=recent),
            "runningAtTime": "yesterday",
        },
        {**job_record("bad-3", project="sales", quota="etl", submitted=recent), "project": 42},
    ]
    simulator.set_jobs(JOBS + broken)
    stack = Stack(simulator)
    try:
        assert await stack.poller.poll()
    finally:
        await stack.poller.aclose()
    values = stack.scrape()
    assert {k: values[k] for k in TRUTH} == TRUTH
    assert values[("maxcompute_exporter_invalid_jobs_total",)] == 3


async def test_randomly_malformed_records_never_break_a_poll(simulator: ApiSimulator) -> None:
    simulator.set_faults(Faults(malformed=0.2, seed=11))
    stack = Stack(simulator)
    try:
        assert await stack.poller.poll()
    finally:
        await stack.poller.aclose()
    values = stack.scrape()
    invalid = values[("maxcompute_exporter_invalid_jobs_total",)]
    counted = values[("maxcompute_running_jobs", "sales")] + values.get(
        ("maxcompute_running_jobs", "ads"), 0
    )
    assert invalid > 0
    assert counted + invalid == 50


async def test_stale_job_series_are_dropped_after_max_staleness(
    stack: Stack, simulator: ApiSimulator
) -> None:
    assert await stack.poller.poll()
    simulator.set_faults(Faults(server_error=1.0))
    assert not await stack.poller.poll()
    stack.clock.offset = 25  # within max_staleness (30 s) of the last good poll
    assert ("maxcompute_running_jobs", "sales") in stack.scrape()
    stack.clock.offset = 31
    values = stack.scrape()
    assert not [k for k in values if k[0].startswith("maxcompute_running_jobs")]
    assert values[("maxcompute_up",)] == 0
    assert ("maxcompute_exporter_last_success_timestamp_seconds",) in values


async def test_a_poll_past_its_deadline_fails_as_a_whole(simulator: ApiSimulator) -> None:
    settings = PollSettings(
        interval=10.0,
        window=3600.0,
        page_concurrency=1,
        timeout=1.0,
        retries=0,
        rate_limit=1000.0,
        deadline=0.5,
    )
    simulator.set_faults(Faults(latency=0.2))
    stack = Stack(simulator, settings)
    try:
        started = time.monotonic()
        assert not await stack.poller.poll()
        assert time.monotonic() - started < 2.0  # 0.5 s deadline, not 3 pages x 0.2 s + more
    finally:
        await stack.poller.aclose()
    values = stack.scrape()
    assert errors(values) == {"deadline": 1}
    assert not [k for k in values if k[0] == "maxcompute_running_jobs"]


async def test_auth_failure_is_not_retried_and_logged_once(
    simulator: ApiSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    simulator.state.credentials = {KEY.access_key_id: ("another-secret", None)}
    stack = Stack(simulator)
    caplog.set_level(logging.DEBUG, logger="exporter.poller")
    try:
        assert not await stack.poller.poll()
        assert not await stack.poller.poll()
    finally:
        await stack.poller.aclose()
    values = stack.scrape()
    assert errors(values) == {"auth": 2}
    assert requests(values) == {"400": 2}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "errorCode=SignatureDoesNotMatch" in warnings[0].error
    assert "requestId=" in warnings[0].error
    assert "faults-secret" not in caplog.text


async def test_the_web_server_answers_while_a_poll_hangs(simulator: ApiSimulator) -> None:
    import asyncio

    import httpx

    from exporter.web.server import ExporterHTTPServer

    # Answers 2 s late: a scrape that waited for the poll would take that long.
    simulator.set_faults(Faults(latency=2.0))
    settings = PollSettings(
        interval=20.0, window=3600.0, timeout=10.0, retries=0, rate_limit=1000.0, deadline=10.0
    )
    stack = Stack(simulator, settings)
    server = ExporterHTTPServer(("127.0.0.1", 0), stack.renderer, lambda: False)
    server.serve_in_thread()
    port = server.server_address[1]
    try:
        poll = asyncio.create_task(stack.poller.poll())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        response = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0  # half the answer's delay, on a loaded machine
        assert not poll.done()
        assert await poll
    finally:
        server.shutdown()
        server.server_close()
        await stack.poller.aclose()


async def test_a_job_near_the_start_of_the_window_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Window 1000 s: its first tenth is [now - 1000, now - 900]. The time is taken here, not at
    # import: the module's NOW may be a minute old when this test runs in the whole suite.
    now = int(time.time())
    jobs = [
        job_record("old", submitted=now - 950, running=now - 940),
        job_record("new", submitted=now - 10, running=now - 5),
    ]
    sim = ApiSimulator(jobs, credentials={KEY.access_key_id: (KEY.access_key_secret, None)})
    sim.start()
    settings = PollSettings(interval=10.0, window=1000.0, timeout=1.0, retries=0, rate_limit=1000.0)
    stack = Stack(sim, settings)
    caplog.set_level(logging.WARNING, logger="exporter.poller")
    try:
        assert await stack.poller.poll()
        assert await stack.poller.poll()
        sim.set_jobs(jobs[1:])
        assert await stack.poller.poll()
        sim.set_jobs(jobs)
        assert await stack.poller.poll()
    finally:
        await stack.poller.aclose()
        sim.stop()
    edge = [r for r in caplog.records if "near the start of the window" in r.getMessage()]
    # Once when it appears, not again while it stays, and again after it went and came back.
    assert len(edge) == 2
