"""``--demo``: start the simulator with the phased workload and its fault schedule, and say
which configuration polls it."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from exporter.config import Config, Credentials, MetricsSettings, PollSettings, Target
from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, ApiSimulator
from exporter.demo.workload import DemoFaults, phased_workload


def demo_config(endpoint: str) -> Config:
    target = Target(
        region="cn-hangzhou",
        endpoint=endpoint,
        credentials=Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
    )
    # The per-job view is on so that the demo's alerts and dashboard name the jobs.
    return Config(
        targets=(target,),
        poll=PollSettings(interval=15.0, window=86400.0),
        metrics=MetricsSettings(top_jobs=5),
    )


@dataclass(frozen=True, slots=True)
class DemoRun:
    """The running demo: the simulator and its fault schedule, and the config that polls it."""

    simulator: ApiSimulator
    faults: DemoFaults

    def config(self) -> Config:
        # A reload in demo mode reads the same demo configuration: nothing changes.
        return demo_config(self.simulator.url)

    def stop(self) -> None:
        self.faults.stop()
        with contextlib.suppress(Exception):
            self.simulator.stop()


def start_demo() -> DemoRun:
    """Start the simulator; the demo's phases (a saturating quota, problem jobs, API faults)
    count from now."""
    started = time.time()
    # 120 jobs that start and finish all the time: a tenant whose list moves while read.
    simulator = ApiSimulator(phased_workload(started, jobs_per_quota=40)).start()
    return DemoRun(simulator, DemoFaults(simulator, started).start())
