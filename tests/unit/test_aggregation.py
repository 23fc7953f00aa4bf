"""Aggregation arithmetic: given these jobs, these per-(quota, project) numbers."""

from __future__ import annotations

from exporter.api.wire.jobs import RunningJob, parse_job
from exporter.polling.derive.aggregation import GroupAggregate, GroupKey, aggregate, clamp_progress
from tests.support.jobs import NOW, job_record


def job(instance_id: str, **kwargs) -> RunningJob:
    parsed = parse_job(job_record(instance_id, **kwargs), NOW)
    assert parsed is not None
    return parsed


def test_groups_by_quota_and_project_with_exact_values() -> None:
    jobs = [
        job("a", cu=0.25, memory=0.125, progress=0.5, submitted=NOW - 900, running=NOW - 600),
        job("b", cu=0.5, memory=0.25, progress=0.0, submitted=NOW - 700, running=NOW - 400),
        job(
            "c",
            cu=0.125,
            memory=0.5,
            progress=1.0,
            submitted=NOW - 100,
            running=NOW - 100,
            project="ads",
        ),
        job(
            "d",
            cu=0.75,
            memory=0.75,
            progress=0.25,
            quota="adhoc",
            submitted=NOW - 50,
            running=NOW - 20,
        ),
    ]
    result = aggregate(jobs)
    assert result.jobs == 4
    assert result.duplicates == 0
    assert result.oldest_submission_seconds == NOW - 900
    assert result.groups == {
        GroupKey("adhoc", "sales_dw"): GroupAggregate(
            running_jobs=1,
            cu_ratio=0.75,
            memory_ratio=0.75,
            progress_sum=0.25,
            oldest_start_seconds=NOW - 20,
            max_queue_seconds=30,
            zero_progress_jobs=0,
            zero_progress_oldest_start_seconds=None,
        ),
        GroupKey("etl_quota", "ads"): GroupAggregate(
            running_jobs=1,
            cu_ratio=0.125,
            memory_ratio=0.5,
            progress_sum=1.0,
            oldest_start_seconds=NOW - 100,
            max_queue_seconds=0,
            zero_progress_jobs=0,
            zero_progress_oldest_start_seconds=None,
        ),
        GroupKey("etl_quota", "sales_dw"): GroupAggregate(
            running_jobs=2,
            cu_ratio=0.75,
            memory_ratio=0.375,
            progress_sum=0.5,
            oldest_start_seconds=NOW - 600,
            max_queue_seconds=300,
            zero_progress_jobs=1,
            zero_progress_oldest_start_seconds=NOW - 400,
        ),
    }
    assert list(result.groups) == sorted(result.groups)


def test_a_repeated_instance_id_counts_once() -> None:
    result = aggregate([job("a", cu=0.5), job("a", cu=0.5), job("b", cu=0.25)])
    assert result.jobs == 2
    assert result.duplicates == 1
    assert result.groups[GroupKey("etl_quota", "sales_dw")].cu_ratio == 0.75


def test_progress_out_of_range_is_clamped_and_counted() -> None:
    assert clamp_progress(-0.5) == (0.0, True)
    assert clamp_progress(0.3) == (0.3, False)
    assert clamp_progress(42.0) == (1.0, True)
    result = aggregate([job("a", progress=-1.0), job("b", progress=50.0), job("c", progress=0.5)])
    group = result.groups[GroupKey("etl_quota", "sales_dw")]
    assert group.progress_sum == 1.5  # 0 + 1 + 0.5
    assert group.zero_progress_jobs == 1
    assert result.progress_out_of_range == 2


def test_a_job_that_started_before_it_was_submitted_does_not_make_a_negative_queue() -> None:
    result = aggregate([job("a", submitted=NOW, running=NOW - 5)])
    assert result.groups[GroupKey("etl_quota", "sales_dw")].max_queue_seconds == 0


def test_no_jobs_no_groups() -> None:
    result = aggregate([])
    assert result.groups == {}
    assert result.jobs == 0
    assert result.oldest_submission_seconds is None
