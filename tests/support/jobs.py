"""Job records exactly as GetRunningJobs sends them, targets, and snapshots built from records."""

from __future__ import annotations

from exporter.api.wire.jobs import parse_job
from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.config import Credentials, Target
from exporter.polling.derive.aggregation import aggregate
from exporter.polling.publish.snapshot import Snapshot

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


def envelope(records: list, total: object, number: int = 1, size: int = PAGE_SIZE) -> dict:
    """A successful GetRunningJobs response body holding ``records``, saying ``totalCount``."""
    return {
        "requestId": "0bc3b4ab16684833172127321e2c25",
        "httpCode": 200,
        "errorCode": "success",
        "errorMsg": "",
        "data": {
            "runningJobInfoList": records,
            "totalCount": total,
            "pageNumber": number,
            "pageSize": size,
        },
    }


def snapshot_of(*records: dict, completed_at: float = NOW) -> Snapshot:
    """The snapshot a good poll publishes when the API answers ``records`` (read at ``NOW``)."""
    result = aggregate(parse_job(record, NOW) for record in records)
    return Snapshot(result.groups, result.jobs, completed_at=completed_at)
