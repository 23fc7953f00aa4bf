"""The demo's clock: its phases run ``speed`` times faster than wall time, counted from ``start``.

At speed 1 (``--demo``) demo time is wall time. Faster (``--demo.speed``), a test sees a whole
cycle of phases in a minute or so: the workload is computed at the demo time of each request,
and the timestamps it serves are mapped back to wall time, so a job that ran for an hour of demo
time has run for an hour divided by the speed when the exporter and Prometheus look at it.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMESTAMP_FIELDS = ("submittedAtTime", "runningAtTime")


@dataclass(frozen=True, slots=True)
class DemoClock:
    """Maps wall time to demo time and back; both in Unix seconds."""

    start: float
    speed: float = 1.0

    def demo(self, wall: float) -> float:
        """The demo time at wall time ``wall``."""
        return self.start + (wall - self.start) * self.speed

    def wall(self, demo: float) -> float:
        """The wall time at demo time ``demo``."""
        return self.start + (demo - self.start) / self.speed

    def to_wall(self, record: dict) -> dict:
        """A job record with its demo-time timestamps mapped to wall time (whole seconds)."""
        if self.speed == 1.0:
            return record
        mapped = {field: round(self.wall(record[field])) for field in TIMESTAMP_FIELDS}
        return {**record, **mapped}
