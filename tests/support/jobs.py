"""Job records exactly as GetRunningJobs sends them, targets, and snapshots built from records."""

from __future__ import annotations

from exporter.api.jobs import parse_job
from exporter.config import Credentials, Target
from exporter.polling.aggregation import aggregate
from exporter.polling.snapshot import Snapshot

NOW = 1_764_028_800  # 2026-11-25T00:00:00Z
TEST_CREDENTIALS = Credentials("LTAI-test-key", "test-secret-never-shown")


def job_record(
    instance_id: str,
    *,
    project: str = "sales_dw",
    quota: str = "etl_quota",
    owner: str = "RAM$etl:robot",
    cu: float = 0.25,
    memory: float = 0.125,
    progress: float = 0.5,
    submitted: int = NOW - 600,
    running: int = NOW - 300,
) -> dict:
    """A job record exactly as GetRunningJobs returns it."""
    return {
        "instanceId": instance_id,
        "jobOwner": owner,
        "project": project,
        "quotaNickname": quota,
        "cuSnapshot": cu,
        "memorySnapshot": memory,
        "submittedAtTime": submitted,
        "runningAtTime": running,
        "progress": progress,
    }


def many_records(count: int) -> list[dict]:
    return [job_record(f"job-{n:05d}", submitted=NOW - 3600 + n) for n in range(count)]


def make_target(endpoint: str = "https://maxcompute.cn-hangzhou.aliyuncs.com", **kwargs) -> Target:
    return Target(
        region=kwargs.pop("region", "cn-hangzhou"),
        endpoint=endpoint,
        credentials=kwargs.pop("credentials", TEST_CREDENTIALS),
        **kwargs,
    )


def snapshot_of(*records: dict, completed_at: float = NOW) -> Snapshot:
    """The snapshot a good poll publishes when the API answers ``records`` (read at ``NOW``)."""
    result = aggregate(parse_job(record, NOW) for record in records)
    return Snapshot(result.groups, result.jobs, completed_at=completed_at)
