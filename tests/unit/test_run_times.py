"""Running time now: each quota's running jobs by how long they had run at the poll."""

from __future__ import annotations

from exporter.api.wire.jobs import RunningJob
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.derive.aggregation import aggregate
from exporter.polling.derive.run_times import RunTimeFold, RunTimes
from exporter.polling.publish.snapshot import Snapshot, SnapshotStore
from tests.support.exposition import values_of
from tests.support.jobs import NOW, make_target

BOUNDS = (600.0, 3600.0, 21600.0)


def running_for(instance_id: str, seconds: int, quota: str = "etl") -> RunningJob:
    return RunningJob(instance_id, "dw", quota, 0.1, 0.1, 0.5, NOW - seconds - 5, NOW - seconds)


JOBS = [
    running_for("a", 30),
    running_for("b", 600),  # exactly on a bound: in it
    running_for("c", 601),
    running_for("d", 7200),
    running_for("e", 30_000),
    running_for("f", 5, quota="adhoc"),
]


def test_jobs_fall_in_cumulative_buckets_per_quota() -> None:
    result = aggregate(JOBS, run_times=RunTimeFold(BOUNDS, NOW))
    assert result.run_times == {
        "adhoc": RunTimes(BOUNDS, (1, 1, 1), 1, 5),
        "etl": RunTimes(BOUNDS, (2, 3, 4), 5, 30 + 600 + 601 + 7200 + 30_000),
    }
    assert aggregate(JOBS).run_times == {}


def test_a_start_after_the_poll_counts_as_zero_seconds() -> None:
    late = RunningJob("late", "dw", "etl", 0.1, 0.1, 0.5, NOW, NOW + 20)
    assert aggregate([late], run_times=RunTimeFold(BOUNDS, NOW)).run_times == {
        "etl": RunTimes(BOUNDS, (1, 1, 1), 1, 0)
    }


def test_served_as_a_gauge_histogram_and_dropped_when_stale() -> None:
    target = make_target()
    store = SnapshotStore((target,))
    result = aggregate(JOBS, run_times=RunTimeFold(BOUNDS, NOW))
    store.publish_success(
        target, Snapshot(result.groups, result.jobs, NOW, run_times=result.run_times)
    )
    clock = [float(NOW)]
    metrics = ExporterMetrics(
        store, (target,), (), 60.0, max_staleness=180.0, clock=lambda: clock[0],
        process_metrics=False,
    )  # fmt: skip
    renderer = MetricsRenderer(store, metrics)
    text = renderer.render().decode()
    assert "# TYPE maxcompute_running_jobs_run_time_seconds histogram" in text
    etl = (("quota", "etl"), ("region", "cn-hangzhou"))
    buckets = values_of(text, "maxcompute_running_jobs_run_time_seconds_bucket")
    # Jobs running over an hour: the +Inf bucket less the 3600 one.
    assert buckets[(("le", "+Inf"), *etl)] - buckets[(("le", "3600.0"), *etl)] == 2
    assert buckets[(("le", "600.0"), *etl)] == 2
    assert values_of(text, "maxcompute_running_jobs_run_time_seconds_gcount")[etl] == 5
    assert values_of(text, "maxcompute_running_jobs_run_time_seconds_gsum")[etl] == 38_431
    store.publish_failure(target)
    clock[0] += 181
    assert "maxcompute_running_jobs_run_time_seconds_bucket" not in renderer.render().decode()
