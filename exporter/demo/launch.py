"""``--demo``: start the simulator with the phased workload and its fault schedule, and say
which configuration polls it."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from exporter.config import (
    Config,
    Credentials,
    MetricsSettings,
    PollSettings,
    QuotaPollSettings,
    Target,
)
from exporter.demo.quota_simulator import Level1Quota, QuotaCatalog, SubQuota
from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, ApiSimulator
from exporter.demo.workload import CYCLE_SECONDS, DemoFaults, phased_workload


def demo_quotas(started: float, speed: float = 1.0) -> QuotaCatalog:
    """The demo tenant's quotas: the workload's three sub-quotas under two level-1 quotas (one
    of them an older answer with adhocCU), a pay-as-you-go one, and plans that switch twice a
    cycle (prod_p's night plan reserves more). Only etl_quota outgrows its reserve (300 of
    400 CUs) while it saturates; the others stay within theirs, wobble included: prod_p
    reserves 520 CUs by day, more than etl_quota full (400) and adhoc_quota at its highest
    (about 101) use together."""
    production = Level1Quota(
        "prod_p",
        (
            SubQuota("etl_quota", min_cu=300, max_cu=400, elastic_cu=50, job_max_cu=200),
            SubQuota("adhoc_quota", min_cu=120, max_cu=200, job_max_cu=50, scheduler_type="Fair"),
        ),
        min_cu=520,
        max_cu=600,
        elastic_cu=100,
        plans=(("day", 520), ("night", 600)),
    )
    science = Level1Quota(
        "ml_p",
        (SubQuota("ml_quota", min_cu=120, max_cu=160, job_max_cu=80),),
        min_cu=120,
        max_cu=160,
        elastic_cu=50,
        legacy_adhoc=True,
    )
    on_demand = Level1Quota(
        "os_PayAsYouGoQuota_p", (SubQuota("os_PayAsYouGoQuota"),), billing="payasyougo"
    )
    return QuotaCatalog(
        (production, science, on_demand),
        page_cap=2,
        envelope="alternate",
        plan_start=started,
        plan_period=CYCLE_SECONDS / 2 / speed,
    )


def demo_config(endpoint: str, speed: float = 1.0) -> Config:
    """Polls the simulator every 15 s of demo time (``speed`` times more often in wall time)."""
    target = Target(
        region="cn-hangzhou",
        endpoint=endpoint,
        credentials=Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
    )
    # The per-job view is on so that the demo's alerts and dashboard name the jobs; the owner
    # view of consumption so that its dashboard panel has owners to show.
    return Config(
        targets=(target,),
        poll=PollSettings(
            interval=15.0 / speed,
            window=86400.0,
            timeout=10.0 / speed,
            retry_backoff=0.5 / speed,
        ),
        metrics=MetricsSettings(top_jobs=5, owner_consumption=True),
        quota_poll=QuotaPollSettings(quotas_interval=60.0 / speed, usage_interval=15.0 / speed),
    )


@dataclass(frozen=True, slots=True)
class DemoRun:
    """The running demo: the simulator and its fault schedule, and the config that polls it."""

    simulator: ApiSimulator
    faults: DemoFaults
    started: float
    speed: float = 1.0

    def config(self) -> Config:
        # A reload in demo mode reads the same demo configuration: nothing changes.
        return demo_config(self.simulator.url, self.speed)

    def stop(self) -> None:
        self.faults.stop()
        with contextlib.suppress(Exception):
            self.simulator.stop()


def start_demo(speed: float = 1.0) -> DemoRun:
    """Start the simulator; the demo's phases (a saturating quota, problem jobs, API faults)
    count from now, ``speed`` times faster than wall time."""
    started = float(int(time.time()))  # the workload counts in whole seconds from here
    # 120 jobs that start and finish all the time: a tenant whose list moves while read.
    simulator = ApiSimulator(
        phased_workload(started, jobs_per_quota=40, speed=speed),
        quotas=demo_quotas(started, speed),
    ).start()
    faults = DemoFaults(simulator, started, speed=speed).start()
    return DemoRun(simulator, faults, started, speed)
