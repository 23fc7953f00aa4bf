"""A running list that moves: jobs finish and are submitted, independently, as time passes.

A job source for the simulator (``ApiSimulator(jobs=ChurningJobs(...))``): called with the
current time, it returns the jobs running at that time, listed by submission time. Finishing and
submitting are two Poisson processes, seeded, so a run can be repeated; ``burst`` adds many jobs
submitted in the same second, as a scheduler firing at midnight does; ``queue`` adds jobs that
wait for CUs and start late (not listed until they run, as the API lists running jobs only).
``events`` logs what happened to each job, so a test can count what the exporter should.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections import deque
from dataclasses import dataclass

QUOTAS = ("etl_quota", "adhoc_quota", "ml_quota")
PROJECTS = ("sales_dw", "ads_report", "user_profile", "risk_model", "ops_audit")
OWNERS = ("ALIYUN$ops@example.com", "RAM$etl:robot", "RAM$analyst:alice")


@dataclass(frozen=True, slots=True)
class Churn:
    """How the list moves: jobs finishing and submitted per second, and the listing order."""

    finish_per_second: float = 0.0
    submit_per_second: float = 0.0
    descending: bool = False


class ChurningJobs:
    """``running`` jobs at ``start``, submitted over the ``spread`` seconds before it."""

    def __init__(
        self,
        running: int,
        churn: Churn,
        *,
        start: float,
        spread: int = 6 * 3600,
        seed: int = 0,
    ) -> None:
        self.churn = churn
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._jobs: dict[str, dict] = {}
        self._serial = 0
        self._listing: list[dict] | None = None
        for _ in range(running):
            self._add(int(start) - self._rng.randrange(spread))
        self._next_finish = start + self._gap(churn.finish_per_second)
        self._next_submit = start + self._gap(churn.submit_per_second)
        self.finished = 0
        self.submitted = 0
        # Jobs waiting for CUs: (start time, serial, record); listed once they start.
        self._queued: list[tuple[float, int, dict]] = []
        self.started_late = 0
        # (time, "submitted" | "started" | "finished", record) after each event: recent only.
        self.events: deque[tuple[float, str, dict]] = deque(maxlen=100_000)
        # (time, running, finished so far, submitted so far) after each event: recent only.
        self.history: deque[tuple[float, int, int, int]] = deque(maxlen=100_000)
        self.history.append((start, len(self._jobs), 0, 0))

    def _gap(self, per_second: float) -> float:
        return self._rng.expovariate(per_second) if per_second > 0 else float("inf")

    def _add(self, submitted: int, running: int | None = None) -> dict:
        record = self._record(submitted, submitted if running is None else running)
        self._jobs[record["instanceId"]] = record
        self._listing = None
        return record

    def _record(self, submitted: int, running: int) -> dict:
        self._serial += 1
        slot = self._serial
        instance_id = f"{submitted}{slot:07d}churn"
        return {
            "instanceId": instance_id,
            "jobOwner": OWNERS[slot % len(OWNERS)],
            "project": PROJECTS[slot % len(PROJECTS)],
            "quotaNickname": QUOTAS[slot % len(QUOTAS)],
            "cuSnapshot": round(0.001 + (slot % 7) / 1000, 4),
            "memorySnapshot": round(0.002 + (slot % 5) / 1000, 4),
            "submittedAtTime": submitted,
            "runningAtTime": running,
            "progress": round((slot % 10) / 10, 1),
        }

    def burst(self, second: int, count: int) -> None:
        """``count`` jobs submitted in the same ``second``."""
        with self._lock:
            for _ in range(count):
                self._add(second)

    def queue(self, submitted: int, starts_at: int) -> str:
        """A job submitted at ``submitted`` that waits for CUs until ``starts_at``; its id."""
        with self._lock:
            record = self._record(submitted, starts_at)
            heapq.heappush(self._queued, (starts_at, self._serial, record))
            return record["instanceId"]

    def _start_queued(self) -> float:
        """Start the first queued job; the time it started."""
        starts_at, _, record = heapq.heappop(self._queued)
        self._jobs[record["instanceId"]] = record
        self._listing = None
        self.started_late += 1
        self.events.append((starts_at, "started", record))
        return starts_at

    def _next_start(self) -> float:
        return self._queued[0][0] if self._queued else float("inf")

    def advance(self, now: float) -> None:
        """Apply every finish, submission and late start due by ``now`` (time never runs back)."""
        churn = self.churn
        while min(self._next_finish, self._next_submit, self._next_start()) <= now:
            if self._next_start() <= min(self._next_finish, self._next_submit):
                event_at = self._start_queued()
            elif self._next_finish <= self._next_submit:
                event_at = self._next_finish
                if self._jobs:
                    victim = self._rng.choice(list(self._jobs))
                    self.events.append((event_at, "finished", self._jobs.pop(victim)))
                    self._listing = None
                    self.finished += 1
                self._next_finish += self._gap(churn.finish_per_second)
            else:
                event_at = self._next_submit
                self.events.append((event_at, "submitted", self._add(int(event_at))))
                self.submitted += 1
                self._next_submit += self._gap(churn.submit_per_second)
            self.history.append((event_at, len(self._jobs), self.finished, self.submitted))

    def bounds(self, start: float, end: float) -> tuple[int, int]:
        """Fewest jobs that can have run throughout [start, end], most that ran at some point.

        Only events applied so far count: call ``advance(end)`` first.
        """
        with self._lock:
            before = [h for h in self.history if h[0] <= start] or [self.history[0]]
            after = [h for h in self.history if h[0] <= end] or [self.history[0]]
        _, running, finished, submitted = before[-1]
        _, _, finished_end, submitted_end = after[-1]
        return running - (finished_end - finished), running + (submitted_end - submitted)

    def running_at(self, now: float) -> list[dict]:
        """The jobs running at ``now``, listed by submission time (the same list until a change)."""
        with self._lock:
            self.advance(now)
            if self._listing is None:
                self._listing = sorted(
                    self._jobs.values(),
                    key=lambda job: (job["submittedAtTime"], job["instanceId"]),
                    reverse=self.churn.descending,
                )
            return self._listing

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._jobs)

    __call__ = running_at
