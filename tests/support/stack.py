"""The exporter's parts in process on the simulator, and the 50 jobs whose metrics are known.

``Stack`` is store, metrics, renderer and poller for one target, with a clock the test moves;
``JOBS`` is what the simulator serves and ``TRUTH`` the job metrics they must become.
"""

from __future__ import annotations

import time

from exporter.config import Credentials, PollSettings
from exporter.config.credential_model import CredentialSpec
from exporter.demo.simulator import ApiSimulator
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from tests.support.exposition import samples
from tests.support.jobs import job_record, make_target

KEY = Credentials("LTAIfaults", "faults-secret")
NOW = int(time.time())
# 50 jobs, three pages: (etl, sales) 30 jobs of 0.015625 CU, (etl, ads) 20 jobs of 0.0078125.
JOBS = [
    job_record(
        f"s{n:02d}",
        project="sales",
        quota="etl",
        cu=0.015625,
        memory=0.03125,
        progress=0.5,
        submitted=NOW - 600 + n,
        running=NOW - 500,
    )
    for n in range(30)
] + [
    job_record(
        f"a{n:02d}",
        project="ads",
        quota="etl",
        cu=0.0078125,
        memory=0.0078125,
        progress=0.25,
        submitted=NOW - 300 + n,
        running=NOW - 200,
    )
    for n in range(20)
]
TRUTH = {
    ("maxcompute_running_jobs", "sales"): 30,
    ("maxcompute_running_jobs", "ads"): 20,
    ("maxcompute_running_jobs_cu_ratio", "sales"): 0.46875,
    ("maxcompute_running_jobs_cu_ratio", "ads"): 0.15625,
    ("maxcompute_running_jobs_memory_ratio", "sales"): 0.9375,
    ("maxcompute_running_jobs_memory_ratio", "ads"): 0.15625,
    ("maxcompute_running_jobs_progress_sum_ratio", "sales"): 15.0,
    ("maxcompute_running_jobs_progress_sum_ratio", "ads"): 5.0,
}
FAST = PollSettings(
    interval=10.0,
    window=3600.0,
    page_concurrency=2,
    timeout=0.5,
    retries=2,
    retry_backoff=0.01,
    rate_limit=1000.0,
    deadline=5.0,
    max_staleness=30.0,
)


class Clock:
    """Wall time, moved forward by ``offset`` seconds: staleness tested without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Stack:
    """Store, metrics, renderer and poller for one target on the simulator, in process."""

    def __init__(
        self,
        simulator: ApiSimulator,
        settings: PollSettings = FAST,
        credentials: Credentials | CredentialSpec = KEY,
        **poller_options: int,
    ) -> None:
        self.clock = Clock()
        target = make_target(simulator.url, credentials=credentials)
        self.store = SnapshotStore((target,))
        metrics = ExporterMetrics(
            self.store,
            (target,),
            (),
            settings.interval,
            max_staleness=settings.effective_max_staleness,
            clock=self.clock,
            process_metrics=False,
        )
        self.renderer = MetricsRenderer(self.store, metrics)
        # poller_options: top_jobs, max_projects_per_quota, max_quotas (metrics settings).
        self.poller = TargetPoller(
            target, settings, self.store, metrics.polls, clock=self.clock, **poller_options
        )

    def scrape(self) -> dict[tuple, float]:
        out = {}
        for sample in samples(self.renderer.render().decode()):
            labels = dict(sample.labels)
            if "project" in labels:
                out[(sample.name, labels["project"])] = sample.value
            elif "code" in labels:
                out[(sample.name, labels["code"])] = sample.value
            elif "reason" in labels:
                out[(sample.name, labels["reason"])] = sample.value
            else:
                out[(sample.name,)] = sample.value
        return out

    def job_values(self) -> dict[tuple, float]:
        return {
            k: v
            for k, v in self.scrape().items()
            if k in TRUTH or k[0] in ("maxcompute_running_jobs", "maxcompute_running_jobs_cu_ratio")
        }
