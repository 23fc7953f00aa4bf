"""Each API operation's budget: its own learned rate and requests in flight, a timeout as a slow
answer, a round's bounded retries, and the error a poll that ran out of time is failed as."""

from __future__ import annotations

import asyncio

import pytest

from exporter.api.errors import ApiError
from exporter.api.transport.client import RunningJobsClient
from exporter.api.transport.retries import PacedRetries, RetryAllowance
from exporter.config import PollSettings
from exporter.polling.schedule.poller import out_of_time
from exporter.polling.schedule.quota_poller import as_api_error
from tests.support.jobs import make_target

SETTINGS = PollSettings(retries=3, retry_backoff=0.0)


async def test_operations_learn_their_rates_and_hold_their_slots_apart() -> None:
    client = RunningJobsClient(make_target(), SETTINGS)
    try:
        usage = client.budget("GetQuotaUsage")
        assert usage is client.budget("GetQuotaUsage")
        assert usage is not client.budget("GetRunningJobs")
        assert usage is not client.budget("ListQuotas")

        async def throttled() -> None:
            raise ApiError("throttled", "slow down", retryable=True)

        with pytest.raises(ApiError):
            await client.call_with_retries("GetQuotaUsage", throttled)
        assert usage.rate.cuts == 4 and usage.rate.rate == pytest.approx(50 * 0.7**4)
        assert client.rate.cuts == 0 and client.request_rate == 50.0  # GetRunningJobs' own
        assert client.budget("GetRunningJobs").in_flight.in_flight == 0
    finally:
        await client.aclose()


async def test_a_request_that_timed_out_counts_as_an_answer_that_slow() -> None:
    budget = PacedRetries(PollSettings(retries=0))

    async def times_out() -> None:
        await asyncio.sleep(0.2)
        raise ApiError("timeout", "no answer", retryable=True)

    with pytest.raises(ApiError):
        await budget.call(times_out)
    assert budget.in_flight.latency is not None and budget.in_flight.latency >= 0.2
    # Little's law at 50/s and >= 0.2 s: at least 11 in flight, no longer the first 4.
    assert budget.in_flight.limit >= 11
    assert budget.last_error is not None and budget.last_error.reason == "timeout"


async def test_a_rounds_retries_are_bounded_by_its_allowance() -> None:
    budget = PacedRetries(SETTINGS)
    assert budget.round_allowance(24).left == 3  # max(poll.retries, 10% of 24)
    assert budget.round_allowance(1000).left == 100
    allowance = RetryAllowance(2)
    sent = 0

    async def failing() -> None:
        nonlocal sent
        sent += 1
        raise ApiError("server_error", "503", retryable=True)

    for _ in range(5):
        with pytest.raises(ApiError):
            await budget.call(failing, allowance)
    assert sent == 5 + 2  # five first attempts, two retries in all
    assert allowance.left == 0


def test_a_poll_out_of_time_fails_as_its_last_error_or_as_deadline() -> None:
    unavailable = ApiError("server_error", "503 ServiceUnavailable", status=503)
    assert out_of_time(54.0, unavailable).reason == "server_error"
    assert out_of_time(54.0, unavailable).status == 503
    assert out_of_time(54.0, None).reason == "deadline"
    assert str(out_of_time(54.0, None)) == "poll took longer than its deadline of 54s"
    assert as_api_error("GetQuotaUsage", TimeoutError(), unavailable).reason == "server_error"
    assert as_api_error("GetQuotaUsage", TimeoutError()).reason == "deadline"
