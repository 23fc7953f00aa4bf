"""A running list that moves: jobs finish and are submitted, independently, as time passes.

A job source for the simulator (``ApiSimulator(jobs=ChurningJobs(...))``): called with the
current time, it returns the jobs running at that time, listed by submission time. Finishing and
submitting are two Poisson processes, seeded, so a run can be repeated; ``burst`` adds many jobs
submitted in the same second, as a scheduler firing at midnight does, and a third process starts
queued jobs of that second while it runs. Jobs of one second are listed in no meaningful order
(by a hash of their id), so a job that starts late lands anywhere among them, as nothing says
the service does otherwise. ``queue`` adds jobs that wait for CUs and start late (not listed
until they run, as the API lists running jobs only); ``events`` logs what happened to each job,
so a test can count what the exporter should.
"""

from __future__ import annotations

import bisect
import heapq
import random
import threading
import zlib
from collections import deque
from collections.abc import Sequence
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
    # Queued jobs of the last burst's second that start running, per second.
    queued_per_second: float = 0.0
    # The share of submissions that wait for CUs and start running up to ``late_by`` s later.
    late_share: float = 0.0
    late_by: float = 120.0


class Listing(list):
    """A listing that carries its bisection keys (``simulator_state.submission_index``), so the
    simulator need not walk 30 000 jobs after each change to find them."""

    submission_keys: tuple[list[int], bool]


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
        # Listing keys and jobs, kept in listing order as jobs come and go: a change costs a
        # bisection, not a sort of the whole list (a tenant of 30 000 moving 30 times a second).
        self._keys: list[tuple[int, int, str]] = []
        self._rows: list[dict] = []
        self._seconds: list[int] = []  # the rows' submission times, in the same order
        self._serial = 0
        self._listing: list[dict] | None = None
        for _ in range(running):
            self._add(int(start) - self._rng.randrange(spread))
        self._next_finish = start + self._gap(churn.finish_per_second)
        self._next_submit = start + self._gap(churn.submit_per_second)
        self._next_queued = start + self._gap(churn.queued_per_second)
        self._burst: tuple[int, Sequence[tuple[str, str]]] | None = None  # second, combinations
        self.finished = 0
        self.submitted = 0
        # Jobs waiting for CUs (``queue``): (start time, serial, record); listed once they start.
        self._waiting: list[tuple[float, int, dict]] = []
        self.started_late = 0
        # (time, "submitted" | "started" | "finished", record) after each event: recent only.
        self.events: deque[tuple[float, str, dict]] = deque(maxlen=100_000)
        # (time, running, finished so far, submitted or started late so far) after each event:
        # recent only.
        self.history: deque[tuple[float, int, int, int]] = deque(maxlen=100_000)
        self.history.append((start, len(self._jobs), 0, 0))

    def _gap(self, per_second: float) -> float:
        return self._rng.expovariate(per_second) if per_second > 0 else float("inf")

    def _add(
        self,
        submitted: int,
        combination: tuple[str, str] | None = None,
        running: int | None = None,
    ) -> dict:
        record = self._record(submitted, combination, running)
        self._insert(record)
        return record

    def _record(
        self, submitted: int, combination: tuple[str, str] | None, running: int | None
    ) -> dict:
        self._serial += 1
        slot = self._serial
        quota, owner = combination or (QUOTAS[slot % len(QUOTAS)], OWNERS[slot % len(OWNERS)])
        return {
            "instanceId": f"{submitted}{slot:07d}churn",
            "jobOwner": owner,
            "project": PROJECTS[slot % len(PROJECTS)],
            "quotaNickname": quota,
            "cuSnapshot": round(0.001 + (slot % 7) / 1000, 4),
            "memorySnapshot": round(0.002 + (slot % 5) / 1000, 4),
            "submittedAtTime": submitted,
            "runningAtTime": submitted if running is None else running,
            "progress": round((slot % 10) / 10, 1),
        }

    def _insert(self, record: dict) -> None:
        instance_id, submitted = record["instanceId"], record["submittedAtTime"]
        self._jobs[instance_id] = record
        key = self._key(instance_id, submitted)
        index = bisect.bisect(self._keys, key)
        self._keys.insert(index, key)
        self._rows.insert(index, record)
        self._seconds.insert(index, submitted)
        self._listing = None

    @staticmethod
    def _key(instance_id: str, submitted: int) -> tuple[int, int, str]:
        # Within a second, no meaningful order: a hash of the id.
        return (submitted, zlib.crc32(instance_id.encode()), instance_id)

    def _finish_one(self) -> dict:
        """A running job, chosen at random, finishes; its record."""
        index = self._rng.randrange(len(self._rows))
        job = self._rows.pop(index)
        del self._keys[index]
        del self._seconds[index]
        del self._jobs[job["instanceId"]]
        self._listing = None
        return job

    def burst(self, second: int, count: int, combinations: Sequence[tuple[str, str]] = ()) -> None:
        """``count`` jobs submitted in the same ``second``, of ``combinations`` (quota, owner)
        in turn (the usual spread when none are given); queued jobs of it start from now on."""
        combinations = tuple(combinations)
        with self._lock:
            for index in range(count):
                self._add(second, combinations[index % len(combinations)] if combinations else None)
            if self._burst is not None and self._burst[0] == second:
                combinations = (*self._burst[1], *combinations)
            self._burst = (second, combinations)
            # Running from the last event on (``bounds`` counts from the history).
            last_at = self.history[-1][0]
            added = self.submitted + self.started_late
            self.history.append((last_at, len(self._jobs), self.finished, added))

    def schedulers_burst(self, second: int, count: int, owners: int) -> None:
        """``count`` jobs in one ``second`` as schedulers fire them at the top of the hour: four
        fifths spread over ``owners`` owners in each quota, a fifth of one robot in one quota."""
        spread = [(quota, f"RAM$team{n:02d}:scheduler") for quota in QUOTAS for n in range(owners)]
        robot = count // 5
        self.burst(second, count - robot, spread)
        self.burst(second, robot, [(QUOTAS[0], "RAM$etl:robot")])

    def queue(self, submitted: int, starts_at: int) -> str:
        """A job submitted at ``submitted`` that waits for CUs until ``starts_at``; its id."""
        with self._lock:
            record = self._record(submitted, None, starts_at)
            heapq.heappush(self._waiting, (starts_at, self._serial, record))
            return record["instanceId"]

    def _next_start(self) -> float:
        return self._waiting[0][0] if self._waiting else float("inf")

    def _start_waiting(self) -> float:
        """Start the first job ``queue``d; the time it started."""
        starts_at, _, record = heapq.heappop(self._waiting)
        self._insert(record)
        self.started_late += 1
        self.events.append((starts_at, "started", record))
        return starts_at

    def advance(self, now: float) -> None:
        """Apply every finish, submission and late start due by ``now`` (time never runs back)."""
        churn = self.churn
        while (
            min(self._next_finish, self._next_submit, self._next_queued, self._next_start()) <= now
        ):
            if self._next_start() <= min(self._next_finish, self._next_submit, self._next_queued):
                event_at = self._start_waiting()
            elif self._next_queued <= min(self._next_finish, self._next_submit):
                event_at = self._next_queued
                self._start_queued(event_at)
                self._next_queued += self._gap(churn.queued_per_second)
            elif self._next_finish <= self._next_submit:
                event_at = self._next_finish
                if self._jobs:
                    self.events.append((event_at, "finished", self._finish_one()))
                    self.finished += 1
                self._next_finish += self._gap(churn.finish_per_second)
            else:
                event_at = self._next_submit
                self._submit(event_at)
                self._next_submit += self._gap(churn.submit_per_second)
            added = self.submitted + self.started_late
            self.history.append((event_at, len(self._jobs), self.finished, added))

    def _submit(self, event_at: float) -> None:
        """A job submitted at ``event_at``: running at once, or (``late_share``) queued."""
        if self._rng.random() < self.churn.late_share:
            starts_at = event_at + self._rng.uniform(1.0, self.churn.late_by)
            record = self._record(int(event_at), None, int(starts_at))
            heapq.heappush(self._waiting, (starts_at, self._serial, record))
            return
        self.events.append((event_at, "submitted", self._add(int(event_at))))
        self.submitted += 1

    def _start_queued(self, event_at: float) -> None:
        """A queued job of the last burst's second starts running (counted as submitted)."""
        if self._burst is None:
            return
        second, combinations = self._burst
        record = self._add(second, self._rng.choice(combinations) if combinations else None)
        self.events.append((event_at, "submitted", record))
        self.submitted += 1

    def bounds(self, start: float, end: float) -> tuple[int, int]:
        """Fewest jobs that can have run throughout [start, end], most that ran at some point.

        Only events applied so far count: call ``advance(end)`` first.
        """
        with self._lock:
            # Before the list began, it was as it began (bursts included).
            began = self.history[0][0]
            before = [h for h in self.history if h[0] <= max(start, began)]
            after = [h for h in self.history if h[0] <= max(end, began)]
        _, running, finished, submitted = before[-1]
        _, _, finished_end, submitted_end = after[-1]
        return running - (finished_end - finished), running + (submitted_end - submitted)

    def running_at(self, now: float) -> list[dict]:
        """The jobs running at ``now``, listed by submission time (the same list until a change)."""
        with self._lock:
            self.advance(now)
            if self._listing is None:
                if self.churn.descending:
                    listing = Listing(self._rows[::-1])
                    listing.submission_keys = ([-t for t in reversed(self._seconds)], True)
                else:
                    listing = Listing(self._rows)
                    listing.submission_keys = (self._seconds[:], False)
                self._listing = listing
            return self._listing

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._jobs)

    __call__ = running_at
