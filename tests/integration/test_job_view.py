"""The opt-in per-job view: given these jobs, exactly these named series; N respected; off by
default; its config key validated; the exporter serves it end to end."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from exporter.api.wire.jobs import RunningJob, parse_job
from exporter.config import ConfigError, MetricsSettings, load_config, parse_config
from exporter.demo.simulator import ApiSimulator
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.derive.aggregation import JobAggregator, aggregate
from exporter.polling.derive.top_jobs import TopJobs
from exporter.polling.publish.snapshot import Snapshot, SnapshotStore
from tests.support.exporter_process import run_exporter
from tests.support.exposition import samples
from tests.support.jobs import NOW, job_record, make_target
from tests.support.tools import ROOT, promtool

PROD = make_target(labels=(("account", "prod"),))
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIview", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "view-secret"}
VIEW_METRICS = (
    "maxcompute_running_job_cu_ratio",
    "maxcompute_running_job_progress_ratio",
    "maxcompute_running_job_start_timestamp_seconds",
)


def job(instance_id: str, **kwargs) -> RunningJob:
    parsed = parse_job(job_record(instance_id, **kwargs), NOW)
    assert parsed is not None
    return parsed


# Five jobs: by CU e > a > b = c > d; by run time (earliest start) d > c > a > b > e.
JOBS = [
    job("a", cu=0.5, running=NOW - 300, owner="ALIYUN$alice"),
    job("b", cu=0.25, running=NOW - 200, project="ads"),
    job("c", cu=0.25, running=NOW - 4000, quota="adhoc", progress=0.0),
    job("d", cu=0.0625, running=NOW - 9000, progress=1.5),
    job("e", cu=0.75, running=NOW - 10),
]


def ids(jobs: tuple[RunningJob, ...]) -> list[str]:
    return [j.instance_id for j in jobs]


def test_top_n_by_cu_and_by_run_time_each_job_once() -> None:
    assert ids(aggregate(JOBS, top_jobs=1).top_jobs) == ["d", "e"]
    # Top 2 by CU: e, a. Top 2 by run time: d, c. Sorted by (quota, project, instance_id).
    assert ids(aggregate(JOBS, top_jobs=2).top_jobs) == ["c", "a", "d", "e"]
    # A job in both tops is named once: top 3 by CU e, a, b; by run time d, c, a.
    assert ids(aggregate(JOBS, top_jobs=3).top_jobs) == ["c", "b", "a", "d", "e"]
    assert ids(aggregate(JOBS, top_jobs=100).top_jobs) == ["c", "b", "a", "d", "e"]


def test_off_by_default_and_at_zero() -> None:
    assert aggregate(JOBS).top_jobs == ()
    assert aggregate(JOBS, top_jobs=0).top_jobs == ()


def test_ties_are_broken_by_instance_id_whatever_the_order_of_pages() -> None:
    tied = [job(name, cu=0.5, running=NOW - 100) for name in ("z", "m", "b", "x")]
    for order in (tied, tied[::-1], tied[1:] + tied[:1]):
        assert ids(aggregate(order, top_jobs=2).top_jobs) == ["b", "m"]


def test_memory_is_bounded_by_n_not_by_the_job_count() -> None:
    top = TopJobs(3)
    for n in range(5000):
        top.add(job(f"j{n:05d}", cu=(n % 97) / 97, running=NOW - (n * 7919) % 86400))
        assert len(top._by_cu) <= 3 and len(top._by_run_time) <= 3
    assert len(top.jobs()) <= 6


def test_a_duplicate_job_is_named_once() -> None:
    aggregator = JobAggregator(top_jobs=2)
    for item in (JOBS[0], JOBS[0], JOBS[4]):
        aggregator.add(item)
    assert ids(aggregator.result().top_jobs) == ["a", "e"]


def render(top_jobs: int, jobs: list[RunningJob]) -> str:
    store = SnapshotStore((PROD,))
    result = aggregate(jobs, top_jobs=top_jobs)
    store.publish_success(
        PROD, Snapshot(result.groups, result.jobs, completed_at=NOW, top_jobs=result.top_jobs)
    )
    metrics = ExporterMetrics(
        store, (PROD,), ("account",), 60.0, process_metrics=False, top_jobs=top_jobs
    )
    return MetricsRenderer(store, metrics).render().decode()


def view_samples(text: str) -> dict[tuple[str, str, str, str, str], float]:
    """(metric, quota, project, instance_id, owner) -> value, for the per-job series."""
    found = {}
    for sample in samples(text):
        if sample.name in VIEW_METRICS:
            labels = sample.labels
            assert labels["region"] == "cn-hangzhou" and labels["account"] == "prod"
            key = (
                sample.name.removeprefix("maxcompute_running_job_"),
                labels["quota"],
                labels["project"],
                labels["instance_id"],
                labels["owner"],
            )
            found[key] = sample.value
    return found


def test_exact_series_for_a_known_job_set() -> None:
    assert view_samples(render(1, JOBS)) == {
        ("cu_ratio", "etl_quota", "sales_dw", "d", "RAM$etl:robot"): 0.0625,
        ("progress_ratio", "etl_quota", "sales_dw", "d", "RAM$etl:robot"): 1.0,  # clamped
        ("start_timestamp_seconds", "etl_quota", "sales_dw", "d", "RAM$etl:robot"): NOW - 9000,
        ("cu_ratio", "etl_quota", "sales_dw", "e", "RAM$etl:robot"): 0.75,
        ("progress_ratio", "etl_quota", "sales_dw", "e", "RAM$etl:robot"): 0.5,
        ("start_timestamp_seconds", "etl_quota", "sales_dw", "e", "RAM$etl:robot"): NOW - 10,
    }
    named = view_samples(render(2, JOBS))
    assert named[("cu_ratio", "etl_quota", "sales_dw", "a", "ALIYUN$alice")] == 0.5
    assert named[("progress_ratio", "adhoc", "sales_dw", "c", "RAM$etl:robot")] == 0.0
    assert len(named) == 3 * 4


def test_off_by_default_no_family_at_all() -> None:
    text = render(0, JOBS)
    assert "maxcompute_running_job_" not in text
    assert "maxcompute_running_jobs{" in text


def test_a_job_without_owner_is_labelled_with_an_empty_owner() -> None:
    record = job_record("n")
    del record["jobOwner"]
    parsed = parse_job(record, NOW)
    assert parsed is not None and parsed.owner == ""
    assert view_samples(render(1, [parsed])) == {
        ("cu_ratio", "etl_quota", "sales_dw", "n", ""): 0.25,
        ("progress_ratio", "etl_quota", "sales_dw", "n", ""): 0.5,
        ("start_timestamp_seconds", "etl_quota", "sales_dw", "n", ""): NOW - 300,
    }
    assert parse_job({**record, "jobOwner": 42}, NOW).owner == ""


def test_promtool_check_metrics_is_clean() -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=render(3, JOBS),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_key_defaults_to_off_and_is_validated() -> None:
    def parse(text: str):
        return parse_config(yaml.safe_load(text), ENV)

    assert parse("targets: [{region: cn-beijing}]").metrics == MetricsSettings(top_jobs=0)
    assert parse("targets: [{region: cn-beijing}]\nmetrics: {top_jobs: 5}").metrics.top_jobs == 5
    assert load_config(ROOT / "config.example.yaml", ENV).metrics.top_jobs == 0
    for bad, shown in (("-1", "-1"), ("101", "101"), ("'5'", "'5'"), ("true", "true")):
        with pytest.raises(ConfigError) as caught:
            parse(f"targets: [{{region: cn-beijing}}]\nmetrics: {{top_jobs: {bad}}}")
        assert str(caught.value) == (
            f"metrics.top_jobs: expected a whole number from 0 to 100, got {shown}"
        )
    known = (
        r"counter_retention, job_changes, max_owners_per_quota, max_projects_per_quota, "
        r"max_quotas_per_target, owner_consumption, queue_wait_buckets, "
        r"run_time_buckets, top_jobs"
    )
    with pytest.raises(ConfigError, match=rf"^metrics.top: unknown key \(known keys: {known}\)$"):
        parse("targets: [{region: cn-beijing}]\nmetrics: {top: 5}")
    with pytest.raises(ConfigError, match=r"^targets\[0\]\.labels\.owner: expected a label name"):
        parse("targets: [{region: cn-beijing, labels: {owner: me}}]")


def test_the_exporter_serves_the_view_end_to_end(tmp_path: Path) -> None:
    now = int(time.time())
    records = [
        job_record("big", cu=0.5, owner="RAM$etl:robot", running=now - 60, submitted=now - 90),
        job_record("old", cu=0.125, owner="ALIYUN$bob", running=now - 7200, submitted=now - 7300),
        job_record("small", cu=0.0625, running=now - 30, submitted=now - 40),
    ]
    simulator = ApiSimulator(records, credentials={"LTAIview": ("view-secret", None)}).start()
    try:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
            "    labels: {account: prod}\n"
            "poll: {interval: 30s, window: 1d, timeout: 5s}\nmetrics: {top_jobs: 1}\n"
        )
        result = run_exporter("--config", str(config), "--once", env=ENV)
    finally:
        simulator.stop()
    assert result.returncode == 0, result.stderr
    assert view_samples(result.stdout) == {
        ("cu_ratio", "etl_quota", "sales_dw", "big", "RAM$etl:robot"): 0.5,
        ("progress_ratio", "etl_quota", "sales_dw", "big", "RAM$etl:robot"): 0.5,
        ("start_timestamp_seconds", "etl_quota", "sales_dw", "big", "RAM$etl:robot"): now - 60,
        ("cu_ratio", "etl_quota", "sales_dw", "old", "ALIYUN$bob"): 0.125,
        ("progress_ratio", "etl_quota", "sales_dw", "old", "ALIYUN$bob"): 0.5,
        ("start_timestamp_seconds", "etl_quota", "sales_dw", "old", "ALIYUN$bob"): now - 7200,
    }
