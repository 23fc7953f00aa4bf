"""What ``--demo`` serves: a workload that moves through phases so that every alert can be seen.

The phases repeat every ``CYCLE_SECONDS`` (13.5 minutes), counted from the exporter's start:

====================  ==========  ==============================================================
phase                 seconds     what the simulator serves
====================  ==========  ==============================================================
calm                  0-30        each quota at its baseline, wobbling ±0.05 from poll to poll
saturation ramp       30-340      ``etl_quota`` rises steadily from 0.55, 8.7 points a minute
                                  (a scheduler's burst), until it is full ...
saturated             340-600     ... and stays full (0.95-1.0); the page must come before
problem jobs          30-600      a job stuck at progress 0 for over an hour, one that queued
                                  32 minutes, one running for over 6 hours
API fault burst       510-570     half of the requests throttled (retries absorb most)
outage                570-810     every request answers 503 (4 minutes): polls fail, data goes
                                  stale, alerts that were firing stay firing
====================  ==========  ==============================================================

then back to calm. Jobs are a pure function of the time (``now``) and the start, so any two
requests at the same moment agree, and tests can start the workload at any phase. With a
``speed`` above 1 the phases run that much faster (``demo_time.DemoClock``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from exporter.demo.demo_time import DemoClock
from exporter.demo.simulator import ApiSimulator
from exporter.demo.simulator_state import Faults, JobSource

CYCLE_SECONDS = 810
DEMO_QUOTAS = ("etl_quota", "adhoc_quota", "ml_quota")
DEMO_PROJECTS = ("sales_dw", "ads_report", "user_profile", "risk_model", "ops_audit")
DEMO_OWNERS = ("ALIYUN$ops@example.com", "RAM$etl:robot", "RAM$analyst:alice")
BASELINE = {"etl_quota": 0.55, "adhoc_quota": 0.45, "ml_quota": 0.65}
WOBBLE = 0.05
WOBBLE_PERIOD = 15  # the demo's poll interval: the wobble changes from poll to poll
SATURATING_QUOTA = "etl_quota"
RAMP = (30, 340)  # seconds into the cycle: 0.55 to 1.0, 8.7 points a minute
PEAK = 1.0  # full: the page must come before
SATURATED_UNTIL = 600
PROBLEM_JOBS = (30, 600)
FAULT_BURST = (510, 570)
OUTAGE = (570, 810)


def elapsed_in_cycle(now: float, start: float) -> float:
    return (now - start) % CYCLE_SECONDS


def quota_level(quota: str, elapsed: float) -> float:
    """The quota's CU saturation, before wobble, ``elapsed`` seconds into the cycle."""
    base = BASELINE[quota]
    if quota != SATURATING_QUOTA or elapsed < RAMP[0] or elapsed >= SATURATED_UNTIL:
        return base
    if elapsed >= RAMP[1]:
        return PEAK
    return base + (PEAK - base) * (elapsed - RAMP[0]) / (RAMP[1] - RAMP[0])


def wobble(quota: str, now: float) -> float:
    """-0.05..+0.05, changing every poll; the kind of noise an alert must not page on."""
    step = int(now) // WOBBLE_PERIOD
    return WOBBLE * (((step * 7 + DEMO_QUOTAS.index(quota) * 3) % 5) - 2) / 2


def served_level(quota: str, elapsed: float, now: float) -> float:
    """The quota's CU saturation as served: level and wobble, never above full. A burst rises
    steadily (no wobble on the ramp); a full quota wobbles below full only."""
    if quota == SATURATING_QUOTA and RAMP[0] <= elapsed < RAMP[1]:
        return quota_level(quota, elapsed)
    return min(quota_level(quota, elapsed) + wobble(quota, now), PEAK)


def faults_at(elapsed: float) -> Faults:
    if OUTAGE[0] <= elapsed < OUTAGE[1]:
        return Faults(server_error=1.0)
    if FAULT_BURST[0] <= elapsed < FAULT_BURST[1]:
        return Faults(throttle=0.5)
    return Faults()


def _day(timestamp: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(timestamp))


def _record(
    instance_id: str,
    quota: str,
    slot: int,
    cu: float,
    submitted: int,
    running: int,
    progress: float,
) -> dict:
    return {
        "instanceId": instance_id,
        "jobOwner": DEMO_OWNERS[slot % len(DEMO_OWNERS)],
        "project": DEMO_PROJECTS[slot % len(DEMO_PROJECTS)],
        "quotaNickname": quota,
        "cuSnapshot": round(cu, 4),
        "memorySnapshot": round(cu * 0.9, 4),
        "submittedAtTime": submitted,
        "runningAtTime": running,
        "progress": round(progress, 3),
    }


def background_jobs(now: int, start: int, jobs_per_quota: int) -> list[dict]:
    """Jobs that start, progress and finish; their CU shares add up to each quota's level."""
    elapsed = elapsed_in_cycle(now, start)
    records = []
    for q, quota in enumerate(DEMO_QUOTAS):
        share = served_level(quota, elapsed, now) / jobs_per_quota
        for slot in range(jobs_per_quota):
            duration = 240 + (slot * 131 + q * 57) % 660
            cycle, position = divmod(now - start + slot * 97, duration)
            running = now - position
            submitted = running - 5 - (slot * 23) % 115
            # Slot 0 never progresses: a young zero-progress job (far from the alert's hour).
            progress = 0.0 if slot == 0 else position / duration
            instance_id = f"{_day(submitted)}{q}{slot:03d}{cycle:07d}demo"
            records.append(_record(instance_id, quota, slot, share, submitted, running, progress))
    return records


def problem_jobs(now: int, start: int) -> list[dict]:
    """The jobs the job alerts are about, present from 30 s to 10 minutes into each cycle."""
    elapsed = elapsed_in_cycle(now, start)
    if not PROBLEM_JOBS[0] <= elapsed < PROBLEM_JOBS[1]:
        return []
    cycle_start = int(now - elapsed)
    stuck_start = cycle_start - 3660  # at progress 0 for over an hour
    queued_start = cycle_start + PROBLEM_JOBS[0]  # after 32 minutes in the queue
    long_start = cycle_start - 6 * 3600 - 600  # running for over 6 hours
    return [
        _record(f"{_day(stuck_start)}stuck{cycle_start}", "ml_quota", 1, 0.005,
                stuck_start - 60, stuck_start, 0.0),
        _record(f"{_day(queued_start)}queued{cycle_start}", "adhoc_quota", 2, 0.005,
                queued_start - 1920, queued_start, (now - queued_start) / 3600),
        _record(f"{_day(long_start)}long{cycle_start}", "ml_quota", 3, 0.005,
                long_start - 30, long_start, 0.42),
    ]  # fmt: skip


def phased_workload(start: float, jobs_per_quota: int = 8, speed: float = 1.0) -> JobSource:
    """The demo's jobs at any ``now``, sorted by submission time; phases count from ``start``
    and run ``speed`` times faster than wall time."""
    origin = int(start)
    clock = DemoClock(origin, speed)

    def jobs_at(now: float) -> list[dict]:
        moment = int(clock.demo(now))
        records = background_jobs(moment, origin, jobs_per_quota) + problem_jobs(moment, origin)
        records = [clock.to_wall(record) for record in records]
        records.sort(key=lambda r: (r["submittedAtTime"], r["instanceId"]))
        return records

    return jobs_at


class DemoFaults:
    """Switches the simulator's faults as the phases go by (checked every ``period`` seconds)."""

    def __init__(
        self,
        simulator: ApiSimulator,
        start: float,
        period: float = 1.0,
        clock: Callable[[], float] = time.time,
        speed: float = 1.0,
    ) -> None:
        self._simulator = simulator
        self._start = start
        self._period = period / speed
        self._clock = clock
        self._demo_clock = DemoClock(start, speed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-faults", daemon=True)

    def _run(self) -> None:
        current = None
        while not self._stop.is_set():
            demo_now = self._demo_clock.demo(self._clock())
            faults = faults_at(elapsed_in_cycle(demo_now, self._start))
            if faults != current:
                self._simulator.set_faults(faults)
                current = faults
            self._stop.wait(self._period)

    def start(self) -> DemoFaults:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
