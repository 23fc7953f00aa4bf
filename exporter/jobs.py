"""A running job as the API reports it, and the check that turns a raw record into one."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RunningJob:
    instance_id: str
    project: str
    quota: str
    cu_snapshot: float
    memory_snapshot: float
    progress: float
    submitted_at: int
    running_at: int


def _text(record: dict, key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def _number(record: dict, key: str) -> float | None:
    value = record.get(key)
    # bool is an int in Python, but true/false is not a number on the wire.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _seconds(record: dict, key: str) -> int | None:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def parse_job(record: object) -> RunningJob | None:
    """A ``RunningJob``, or None when a field the metrics need is missing or mistyped."""
    if not isinstance(record, dict):
        return None
    instance_id = _text(record, "instanceId")
    project = _text(record, "project")
    quota = _text(record, "quotaNickname")
    cu = _number(record, "cuSnapshot")
    memory = _number(record, "memorySnapshot")
    progress = _number(record, "progress")
    submitted = _seconds(record, "submittedAtTime")
    running = _seconds(record, "runningAtTime")
    if (
        instance_id is None
        or project is None
        or quota is None
        or cu is None
        or memory is None
        or progress is None
        or submitted is None
        or running is None
    ):
        return None
    return RunningJob(instance_id, project, quota, cu, memory, progress, submitted, running)
