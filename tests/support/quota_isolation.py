"""A target's jobs poll beside its quota poll, in process, against the simulator on loopback with
GetQuotaUsage hung, throttled or healthy (or the quota poll off): what the jobs poll did.

Shared by the isolation tests and ``bench/quota_isolation.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from exporter.config import Config, Credentials, PollSettings, QuotaPollSettings, Target
from exporter.demo.quota_simulator import Level1Quota, QuotaCatalog, SubQuota
from exporter.demo.simulator import ApiSimulator
from exporter.demo.simulator_state import Faults
from exporter.wiring import Exporter
from tests.support.exposition import values
from tests.support.jobs import job_record

KEY_ID, SECRET = "LTAIisolation", "isolation-secret"
# 4 level-1 quotas of 5 sub-quotas each: 24 usage requests a round.
CATALOG = QuotaCatalog(
    tuple(
        Level1Quota(f"l{a}", tuple(SubQuota(f"s{a}{b}", max_cu=100) for b in range(5)), max_cu=500)
        for a in range(4)
    )
)
QUOTAS = 24
# Short timeouts keep the hung rounds short; the rest is the default.
SETTINGS = PollSettings(interval=60.0, window=3600.0, timeout=4.0)
QUOTA_SETTINGS = QuotaPollSettings(quotas_interval=300.0, usage_interval=30.0)


def running_jobs(count: int, now: int) -> list[dict]:
    """``count`` running jobs, one a second, spread over the sub-quotas and 7 projects."""
    return [
        job_record(
            f"j{n:05d}",
            quota=f"s{n % 4}{n % 5}",
            project=f"p{n % 7}",
            submitted=now - 3000 + n,
            running=now - 3000 + n,
        )
        for n in range(count)
    ]


@dataclass(frozen=True, slots=True)
class JobsPolls:
    """What the jobs polls did, and what the usage round beside them ended as."""

    ok: tuple[bool, ...]
    seconds: tuple[float, ...]
    cpu_seconds: tuple[float, ...]  # the process's (simulator threads included)
    jobs: int
    metrics: dict
    jobs_rate_cuts: int
    usage_ok: bool | None
    server_requests: int
    server_connections: int = 0  # TCP connections the simulator accepted, every operation's


def config(url: str, quota_poll: bool) -> Config:
    target = Target(region="cn-hangzhou", endpoint=url, credentials=Credentials(KEY_ID, SECRET))
    quota = QUOTA_SETTINGS if quota_poll else QuotaPollSettings(quotas=False, usage=False)
    return Config(targets=(target,), poll=SETTINGS, quota_poll=quota)


async def _until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.01)


async def _polls(exporter: Exporter, usage_fault: str | None, polls: int) -> JobsPolls:
    poller = exporter.pollers[0]
    usage = None
    if exporter.quota_pollers:
        quota = exporter.quota_pollers[0]
        assert await quota.poll_quotas()
        usage = asyncio.create_task(quota.poll_usage())
        budget = poller.client.budget("GetQuotaUsage")
        if usage_fault == "hang":  # the usage requests hold their slots when the jobs poll starts
            await _until(lambda: budget.in_flight.in_flight >= 4)
        elif usage_fault == "throttle":  # and the usage rate is cut
            await _until(lambda: budget.rate.cuts >= 1)
    ok, seconds, cpu = [], [], []
    for _ in range(polls):
        started, cpu_started = time.monotonic(), time.process_time()
        ok.append(await poller.poll())
        seconds.append(time.monotonic() - started)
        cpu.append(time.process_time() - cpu_started)
    usage_ok = await usage if usage is not None else None
    jobs = exporter.store.status(poller.target).snapshot.jobs
    metrics = values(exporter.renderer.render().decode())
    return JobsPolls(
        tuple(ok), tuple(seconds), tuple(cpu), jobs, metrics, poller.client.rate.cuts, usage_ok, 0
    )


def jobs_polls_beside(
    usage_fault: str | None, jobs: int = 2000, polls: int = 3, latency: float = 0.0
) -> JobsPolls:
    """``polls`` jobs polls of ``jobs`` running jobs; beside them, one usage round whose
    GetQuotaUsage is ``usage_fault`` ("hang", "throttle", "" healthy; None: quota poll off).
    The simulator answers every request ``latency`` seconds late."""
    now = int(time.time())
    catalog = replace(CATALOG, usage_fault=usage_fault or "")
    simulator = ApiSimulator(
        running_jobs(jobs, now),
        credentials={KEY_ID: (SECRET, None)},
        quotas=catalog,
        faults=Faults(latency=latency),
    ).start()
    exporter = Exporter(config(simulator.url, usage_fault is not None))
    accepted = _count_connections(simulator)

    async def run() -> JobsPolls:
        try:
            return await _polls(exporter, usage_fault, polls)
        finally:
            await exporter.aclose()

    try:
        result = asyncio.run(run())
    finally:
        simulator.stop()
    return replace(result, server_requests=simulator.state.requests, server_connections=accepted[0])


def _count_connections(simulator: ApiSimulator) -> list[int]:
    """A counter of the connections ``simulator`` accepts from now on, in a one-item list."""
    accepted = [0]
    process = simulator.process_request

    def counted(request: object, client_address: object) -> None:
        accepted[0] += 1
        process(request, client_address)

    simulator.process_request = counted  # type: ignore[method-assign]
    return accepted
