"""A job's start as the poll may use it: never after the poll's own time.

The parser lets a ``runningAtTime`` up to 5 minutes ahead of the answer's clock through (the
service's clock may run ahead of ours). But a job listed as running has started by the time
the poll reads it: a start after the poll's time (the end of its window) is clock skew or a bad
record, and left as it is it becomes a queue wait (``max_queue_seconds``, the queue-wait
histogram) of up to 5 minutes that never happened. Every step after the read sees the start
clamped to the poll's time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from exporter.api.wire.jobs import RunningJob


def started_by(jobs: Iterable[RunningJob], poll_time: int) -> Iterator[RunningJob]:
    """``jobs``, each with ``running_at`` at most ``poll_time`` (a copy only where clamped)."""
    for job in jobs:
        if job.running_at > poll_time:
            job = dataclasses.replace(job, running_at=poll_time)
        yield job
