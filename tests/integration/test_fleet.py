"""Bounded series, end to end: the simulator's jobs, a real poll, the exposition it becomes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace

import pytest

from exporter.demo.simulator import ApiSimulator
from exporter.metrics.families import JOB_METRICS
from exporter.polling.derive.project_fold import OTHER_PROJECT
from tests.support.exporter_process import exporter_command
from tests.support.exposition import samples
from tests.support.jobs import job_record
from tests.support.stack import FAST, KEY, NOW, Stack
from tests.support.tools import ROOT

PROJECTS = 2000
SETTINGS = replace(FAST, interval=60.0, page_concurrency=8, deadline=50.0, max_staleness=180.0)


def two_jobs_per_project(quota: str = "etl_quota") -> list[dict]:
    """Per project: one job at progress 0 and one at 0.5, CUs distinct and exactly summable."""
    records = []
    for n in range(PROJECTS):
        for half, progress in enumerate((0.0, 0.5)):
            records.append(
                job_record(
                    f"j{n:04d}-{half}",
                    quota=quota,
                    project=f"p{n:04d}",
                    cu=(2 * n + half + 1) / 16384,
                    memory=(n + 1) / 8192,
                    progress=progress,
                    submitted=NOW - 3000 + n,
                    running=NOW - 2000 + n + half,
                )
            )
    return records


@pytest.fixture(scope="module")
def simulator():
    sim = ApiSimulator(
        two_jobs_per_project(), credentials={KEY.access_key_id: (KEY.access_key_secret, None)}
    )
    sim.start()
    yield sim
    sim.stop()


async def poll_and_scrape(simulator: ApiSimulator, cap: int) -> tuple[Stack, str]:
    stack = Stack(simulator, SETTINGS, max_projects_per_quota=cap)
    try:
        assert await stack.poller.poll()
    finally:
        await stack.poller.aclose()
    return stack, stack.renderer.render().decode()


def by_metric(text: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for sample in samples(text):
        if "project" in sample.labels:
            out[sample.name][sample.labels["project"]] = sample.value
    return out


def folded_and_series(text: str) -> tuple[float, float]:
    found = {s.name: s.value for s in samples(text) if s.name.startswith("maxcompute_exporter_")}
    return found["maxcompute_exporter_folded_projects"], found["maxcompute_exporter_series"]


async def test_2000_projects_capped_at_100_are_101_series_whose_sums_are_exact(simulator) -> None:
    _, capped_text = await poll_and_scrape(simulator, 100)
    _, full_text = await poll_and_scrape(simulator, 10_000)
    capped, full = by_metric(capped_text), by_metric(full_text)
    for metric in JOB_METRICS:
        assert len(capped[metric.name]) == 101, metric.name
        assert len(full[metric.name]) == PROJECTS
    # The kept ones are the 100 projects with the most CUs, with their own values.
    kept = {f"p{n:04d}" for n in range(PROJECTS - 100, PROJECTS)}
    assert set(capped["maxcompute_running_jobs"]) == kept | {OTHER_PROJECT}
    for metric in JOB_METRICS:
        for project in kept:
            assert capped[metric.name][project] == full[metric.name][project]
    for summed in (
        "maxcompute_running_jobs",
        "maxcompute_running_jobs_cu_ratio",
        "maxcompute_running_jobs_memory_ratio",
        "maxcompute_running_jobs_progress_sum_ratio",
        "maxcompute_running_jobs_zero_progress",
    ):
        assert sum(capped[summed].values()) == sum(full[summed].values()), summed
    for least in (
        "maxcompute_running_jobs_oldest_start_timestamp_seconds",
        "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds",
    ):
        assert min(capped[least].values()) == min(full[least].values()) == NOW - 2000
    queue = "maxcompute_running_jobs_max_queue_seconds"
    assert max(capped[queue].values()) == max(full[queue].values())
    assert capped["maxcompute_running_jobs"][OTHER_PROJECT] == 3800
    assert folded_and_series(capped_text) == (1900, 101 * len(JOB_METRICS))
    assert folded_and_series(full_text) == (0, PROJECTS * len(JOB_METRICS))


LONG = "x" * 200


def one_quota_per_job(jobs: int) -> list[dict]:
    return [
        job_record(
            f"i{n:05d}",
            quota=f"q{n:05d}{LONG}",
            project=f"p{n:05d}{LONG}",
            submitted=NOW - 3000 + n % 2000,
            running=NOW - 1000,
        )
        for n in range(jobs)
    ]


def test_20000_jobs_each_with_its_own_quota_fail_as_too_many_groups_in_bounded_memory(
    tmp_path,
) -> None:
    sim = ApiSimulator(
        one_quota_per_job(20_000), credentials={KEY.access_key_id: (KEY.access_key_secret, None)}
    ).start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets: [{{region: cn-hangzhou, endpoint: '{sim.url}'}}]\n"
        "poll: {interval: 2m, deadline: 110s, window: 2h, page_concurrency: 8}\n"
    )
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": KEY.access_key_secret,
    }
    try:
        done, peak_rss = once_with_peak_rss(config, env)
    finally:
        sim.stop()
    assert done.returncode == 1, done.stderr
    errors = {
        s.labels["reason"]: s.value
        for s in samples(done.stdout)
        if s.name == "maxcompute_exporter_poll_errors_total"
    }
    assert errors["too_many_groups"] == 1, done.stderr
    assert sum(errors.values()) == 1
    assert folded_and_series(done.stdout) == (0, 0)
    assert len(done.stdout) < 64 * 1024  # the self-metrics alone, where 82 MB of series were
    # The process's peak is the read of 20 000 records (about 1 KB each with these names):
    # no group, series or exposition is built past the 101st quota (526 MiB before the limit).
    assert peak_rss < 200 * 2**20, peak_rss


# Runs its arguments as its only child and prints that child's peak RSS (KiB) on stderr's
# last line: the peak of the exporter alone, whatever else this test process started.
PEAK_RSS_WRAPPER = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(done.returncode)"
)


def once_with_peak_rss(config, env) -> tuple[subprocess.CompletedProcess, int]:
    """``--once`` in a child process, and its peak RSS in bytes."""
    command = [*exporter_command("--config", str(config), "--once", "--log.level", "error")]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_WRAPPER, *command],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    *stderr, peak_kib = done.stderr.splitlines()
    return subprocess.CompletedProcess(command, done.returncode, done.stdout, "\n".join(stderr)), (
        int(peak_kib) * 1024
    )
