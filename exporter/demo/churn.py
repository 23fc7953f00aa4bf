"""A running list that moves: jobs finish and are submitted, independently, as time passes.

A job source for the simulator (``ApiSimulator(jobs=ChurningJobs(...))``): called with the
current time, it returns the jobs running at that time, listed by submission time. Finishing and
submitting are two Poisson processes, seeded, so a run can be repeated; ``burst`` adds many jobs
submitted in the same second, as a scheduler firing at midnight does.
"""

from __future__ import annotations

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
        # (time, running, finished so far, submitted so far) after each event: recent only.
        self.history: deque[tuple[float, int, int, int]] = deque(maxlen=100_000)
        self.history.append((start, len(self._jobs), 0, 0))

    def _gap(self, per_second: float) -> float:
        return self._rng.expovariate(per_second) if per_second > 0 else float("inf")

    def _add(self, submitted: int) -> None:
        self._serial += 1
        slot = self._serial
        instance_id = f"{submitted}{slot:07d}churn"
        self._jobs[instance_id] = {
            "instanceId": instance_id,
            "jobOwner": OWNERS[slot % len(OWNERS)],
            "project": PROJECTS[slot % len(PROJECTS)],
            "quotaNickname": QUOTAS[slot % len(QUOTAS)],
            "cuSnapshot": round(0.001 + (slot % 7) / 1000, 4),
            "memorySnapshot": round(0.002 + (slot % 5) / 1000, 4),
            "submittedAtTime": submitted,
            "runningAtTime": submitted,
            "progress": round((slot % 10) / 10, 1),
        }
        self._listing = None

    def burst(self, second: int, count: int) -> None:
        """``count`` jobs submitted in the same ``second``."""
        with self._lock:
            for _ in range(count):
                self._add(second)

    def advance(self, now: float) -> None:
        """Apply every finish and submission due up to ``now`` (time never runs back)."""
        churn = self.churn
        while min(self._next_finish, self._next_submit) <= now:
            if self._next_finish <= self._next_submit:
                event_at = self._next_finish
                if self._jobs:
                    victim = self._rng.choice(list(self._jobs))
                    del self._jobs[victim]
                    self._listing = None
                    self.finished += 1
                self._next_finish += self._gap(churn.finish_per_second)
            else:
                event_at = self._next_submit
                self._add(int(event_at))
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
