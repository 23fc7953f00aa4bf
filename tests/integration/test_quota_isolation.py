"""A quota API in trouble leaves the jobs poll as it is with the quota poll off (issue 23, row 1).

The simulator on loopback serves 2 000 running jobs and 24 quotas whose GetQuotaUsage never
answers, or always answers 429. The jobs polls beside the usage round send the same requests,
read the same jobs, keep their learned rate and never wait out a hung request; the usage round
sends at most 24 + 3 requests (its retry allowance) and fails as what its requests met.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from exporter.demo.simulator import ApiSimulator
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import values
from tests.support.quota_isolation import (
    CATALOG,
    KEY_ID,
    QUOTAS,
    SECRET,
    SETTINGS,
    jobs_polls_beside,
    running_jobs,
)

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}

JOBS = 2000
RETRY_ALLOWANCE = 3  # max(poll.retries, 10% of 24 requests)


def count(metrics: dict, name: str, **labels: str) -> dict[str, float]:
    """The samples named ``name`` with ``labels``, by their remaining label's value."""
    got = {}
    for key, value in metrics.items():
        pairs = dict(key[1:])
        if key[0] == name and all(pairs.get(k) == v for k, v in labels.items()) and value:
            rest = {k: v for k, v in pairs.items() if k not in labels and k != "region"}
            got[",".join(rest.values())] = value
    return got


@pytest.fixture(scope="module")
def quota_off():
    return jobs_polls_beside(None, JOBS)


@pytest.mark.parametrize(
    ("fault", "reason", "code"), [("hang", "timeout", "timeout"), ("throttle", "throttled", "429")]
)
def test_jobs_polls_beside_a_hung_or_throttled_usage_round_are_as_with_the_quota_poll_off(
    quota_off, fault: str, reason: str, code: str
) -> None:
    beside = jobs_polls_beside(fault, JOBS)
    assert quota_off.ok == beside.ok == (True, True, True)
    assert quota_off.jobs == beside.jobs == JOBS
    # The last (planned) poll's requests: the same, or one slice apart where the window slid
    # over a second boundary between the runs.
    requests = "maxcompute_exporter_last_poll_requests"
    assert abs(count(beside.metrics, requests)[""] - count(quota_off.metrics, requests)[""]) <= 1
    jobs_requests = count(beside.metrics, "maxcompute_exporter_api_requests_total")
    assert set(jobs_requests) == {"200"}  # (the first poll's sampling varies by the second)
    assert beside.jobs_rate_cuts == quota_off.jobs_rate_cuts == 0  # the usage 429s cut no jobs rate
    # No jobs poll waited out a hung usage request: each wait would add poll.timeout.
    for with_usage, without in zip(beside.seconds, quota_off.seconds, strict=True):
        assert with_usage < without + SETTINGS.timeout / 2
    assert count(beside.metrics, "maxcompute_exporter_poll_errors_total") == {}
    assert count(beside.metrics, "maxcompute_up") == {"": 1}

    assert beside.usage_ok is False
    usage_errors = count(
        beside.metrics, "maxcompute_exporter_quota_poll_errors_total", operation="GetQuotaUsage"
    )
    assert usage_errors == {reason: 1}
    usage_requests = count(
        beside.metrics, "maxcompute_exporter_quota_api_requests_total", operation="GetQuotaUsage"
    )
    assert usage_requests == {code: QUOTAS + RETRY_ALLOWANCE}
    # Every request the simulator saw is counted: the jobs', one ListQuotas page, the usage's.
    sent = sum(jobs_requests.values()) + 1 + QUOTAS + RETRY_ALLOWANCE
    assert beside.server_requests == sent


def test_a_healthy_usage_round_beside_the_jobs_polls_reads_every_quota(quota_off) -> None:
    beside = jobs_polls_beside("", JOBS)
    assert beside.ok == (True, True, True) and beside.jobs == JOBS and beside.usage_ok is True
    requests = "maxcompute_exporter_last_poll_requests"
    assert abs(count(beside.metrics, requests)[""] - count(quota_off.metrics, requests)[""]) <= 1
    used = count(beside.metrics, "maxcompute_quota_used_cpu_cores")
    assert len(used) == QUOTAS
    usage_requests = count(
        beside.metrics, "maxcompute_exporter_quota_api_requests_total", operation="GetQuotaUsage"
    )
    assert usage_requests == {"200": QUOTAS}


def scrape_until(process: ExporterProcess, ready, timeout: float = 90.0) -> dict:
    """/metrics once ``ready(values)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        got = values(process.get("/metrics").text)
        if ready(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError("/metrics never showed what was waited for")
        time.sleep(0.2)


def test_the_exporter_keeps_maxcompute_up_and_every_job_while_getquotausage_hangs(tmp_path) -> None:
    now = int(time.time())
    catalog = replace(CATALOG, usage_fault="hang")
    simulator = ApiSimulator(
        running_jobs(JOBS, now), credentials={KEY_ID: (SECRET, None)}, quotas=catalog
    ).start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
        "poll:\n  interval: 10s\n  window: 1h\n  timeout: 2s\n"
        "quota_poll:\n  usage_interval: 5s\n"
    )
    process = ExporterProcess("--config", str(config), env={**ENV})
    usage_failed = (
        "maxcompute_exporter_quota_poll_errors_total",
        *sorted(
            {"operation": "GetQuotaUsage", "reason": "timeout", "region": "cn-hangzhou"}.items()
        ),
    )
    polls = ("maxcompute_exporter_poll_duration_seconds_count", ("region", "cn-hangzhou"))
    try:
        process.wait_until("/ready")
        got = scrape_until(process, lambda v: v.get(usage_failed, 0) >= 2 and v.get(polls, 0) >= 2)
    finally:
        code, log = process.stop()
        simulator.stop()
    assert code == 0, log
    assert count(got, "maxcompute_up") == {"": 1}
    assert count(got, "maxcompute_exporter_poll_errors_total") == {}
    assert sum(count(got, "maxcompute_running_jobs").values()) == JOBS
    assert set(count(got, "maxcompute_exporter_api_requests_total")) == {"200"}
    assert count(got, "maxcompute_exporter_quota_poll_up", operation="GetQuotaUsage") == {}
    # Each round asks 24 quotas and retries at most 3 times; a round cut by its deadline
    # counts its requests still in flight as cancelled.
    rounds = sum(
        count(
            got, "maxcompute_exporter_quota_poll_errors_total", operation="GetQuotaUsage"
        ).values()
    )
    sent = count(got, "maxcompute_exporter_quota_api_requests_total", operation="GetQuotaUsage")
    assert set(sent) <= {"timeout", "cancelled"}
    assert QUOTAS * rounds <= sum(sent.values()) <= (QUOTAS + RETRY_ALLOWANCE) * (rounds + 1)
