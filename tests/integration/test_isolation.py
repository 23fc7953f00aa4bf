"""Targets are isolated: one that hangs and one throttled on every request delay no other.

One exporter process, three targets on loopback: a port that accepts and never answers, a
simulator answering every request with 429, and a healthy simulator. The healthy one
publishes every interval (its own, shorter than the others'), scrapes stay fast while the
other two fail, and each failure is reported with its reason.
"""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from exporter.demo.simulator import ApiSimulator
from exporter.demo.simulator_state import Faults
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import samples
from tests.support.jobs import job_record
from tests.support.tools import silent_port

KEY_ID, SECRET = "LTAIisolation", "isolation-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
NOW = int(time.time())
JOBS = [
    job_record(f"h{n}", project="etl", quota="q", submitted=NOW - 60 + n, running=NOW - 30)
    for n in range(3)
]
HEALTHY_INTERVAL = 1.0
OBSERVE_SECONDS = 8.0


def config_text(hung: int, throttled: str, healthy: str) -> str:
    return f"""
poll: {{interval: 3s, timeout: 500ms, deadline: 2s, retries: 3, retry_backoff: 100ms,
        window: 1h}}
targets:
  - {{region: cn-hangzhou, labels: {{account: hung}}, endpoint: 'http://127.0.0.1:{hung}'}}
  - {{region: cn-hangzhou, labels: {{account: throttled}}, endpoint: '{throttled}'}}
  - region: cn-hangzhou
    labels: {{account: healthy}}
    endpoint: '{healthy}'
    poll: {{interval: 1s, deadline: 900ms}}
"""


def by_account(text: str, name: str, **match: str) -> dict[str, float]:
    return {
        s.labels["account"]: s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    }


@pytest.fixture
def fleet(tmp_path):
    credentials = {KEY_ID: (SECRET, None)}
    healthy = ApiSimulator(JOBS, credentials=credentials).start()
    throttled = ApiSimulator(JOBS, credentials=credentials, faults=Faults(throttle=1.0)).start()
    with silent_port() as hung:
        path = tmp_path / "config.yaml"
        path.write_text(config_text(hung, throttled.url, healthy.url))
        exporter = ExporterProcess("--config", str(path), env=ENV)
        try:
            yield exporter
        finally:
            exporter.stop()
            healthy.stop()
            throttled.stop()


def test_a_hung_and_a_throttled_target_never_delay_the_healthy_one(fleet) -> None:
    fleet.wait_until("/metrics")
    successes: list[float] = []
    latencies: list[float] = []
    baseline: list[float] = []
    began = time.monotonic()
    while time.monotonic() - began < OBSERVE_SECONDS:
        started = time.monotonic()
        # A fresh connection each time, as Prometheus's scrapes after a restart.
        text = httpx.get(fleet.base + "/metrics", timeout=5).text
        latencies.append(time.monotonic() - started)
        # The process's cheapest answer, asked the same way: what the machine adds to any one.
        started = time.monotonic()
        assert httpx.get(fleet.base + "/healthz", timeout=5).status_code == 200
        baseline.append(time.monotonic() - started)
        last = by_account(text, "maxcompute_exporter_last_success_timestamp_seconds")
        if "healthy" in last and (not successes or last["healthy"] != successes[-1]):
            successes.append(last["healthy"])
        time.sleep(0.1)
    # Published every interval: at least one publication per 2 intervals of observation,
    # never a gap of 3 intervals, while the others hang and are throttled.
    assert len(successes) >= OBSERVE_SECONDS / HEALTHY_INTERVAL / 2, successes
    gaps = [b - a for a, b in itertools.pairwise(successes)]
    assert max(gaps) < 3 * HEALTHY_INTERVAL, gaps
    # A scrape costs at most 250 ms more than /healthz at the 99th percentile; one that waited
    # for the hung or the throttled poll would wait for its deadline (2 s).
    latencies.sort()
    baseline.sort()
    p99, healthz_p99 = (
        latencies[int(len(latencies) * 0.99) - 1],
        baseline[int(len(baseline) * 0.99) - 1],
    )
    assert p99 < 0.25 + healthz_p99, (latencies[-5:], baseline[-5:])

    assert by_account(text, "maxcompute_up") == {"hung": 0, "throttled": 0, "healthy": 1}
    assert by_account(text, "maxcompute_running_jobs") == {"healthy": 3}
    assert by_account(text, "maxcompute_exporter_poll_interval_seconds") == {
        "hung": 3,
        "throttled": 3,
        "healthy": 1,
    }
    failures = {
        account: {
            s.labels["reason"]
            for s in samples(text)
            if s.name == "maxcompute_exporter_poll_errors_total"
            and s.labels["account"] == account
            and s.value > 0
        }
        for account in ("hung", "throttled", "healthy")
    }
    assert failures["hung"] <= {"timeout", "deadline"} and failures["hung"]
    assert failures["throttled"] <= {"throttled", "deadline"} and failures["throttled"]
    assert failures["healthy"] == set()
    assert by_account(text, "maxcompute_exporter_api_requests_total", code="429")["throttled"] > 0
    # The hung target's failure is reported, with its reason, on /ready.
    ready = fleet.get("/ready")
    assert ready.status_code == 503
    assert "account=hung" in ready.text and "account=throttled" in ready.text
    assert "account=healthy" not in ready.text


def test_50_targets_start_poll_and_serve_within_one_interval(tmp_path) -> None:
    keys = {f"LTAIfleet{n:02d}": (SECRET, None) for n in range(50)}
    simulator = ApiSimulator(JOBS, credentials=keys).start()
    targets = "".join(
        f"  - {{region: cn-hangzhou, endpoint: '{simulator.url}', labels: {{account: a{n:02d}}}, "
        f"credentials: {{access_key_id: {key}, access_key_secret: {SECRET}}}}}\n"
        for n, key in enumerate(keys)
    )
    path = tmp_path / "config.yaml"
    path.write_text(f"poll: {{interval: 15s, window: 1h}}\ntargets:\n{targets}")
    started = time.monotonic()
    exporter = ExporterProcess(
        "--config", str(path), env={"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    )
    try:
        exporter.wait_until("/ready", 200, timeout=15)
        within = time.monotonic() - started
        text = exporter.get("/metrics").text
    finally:
        exporter.stop()
        simulator.stop()
    assert within < 15, within
    assert set(by_account(text, "maxcompute_up").values()) == {1}
    assert len(by_account(text, "maxcompute_up")) == 50
    assert set(by_account(text, "maxcompute_running_jobs").values()) == {3}
