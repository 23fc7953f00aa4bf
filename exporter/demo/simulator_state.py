"""The simulator's state: the jobs it serves, the keys it knows, its faults and its counters."""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

JobSource = Callable[[float], Sequence[dict]]


@dataclass(frozen=True, slots=True)
class Faults:
    """What the simulator does wrong, each as a probability per request (0..1)."""

    latency: float = 0.0  # seconds added to every response
    throttle: float = 0.0  # HTTP 429 Throttling.User
    server_error: float = 0.0  # HTTP 503 ServiceUnavailable
    disconnect: float = 0.0  # connection closed with no response
    malformed: float = 0.0  # per job record: a field is broken
    seed: int | None = None
    # Not probabilities: a service sorting without a tie-breaker (the jobs of one second in
    # another order on every answer), and one that ignores quotaNicknameList and jobOwnerList.
    unstable_order: bool = False
    ignores_filters: bool = False


def submission_index(listing: Sequence[dict]) -> tuple[list[int], bool] | None:
    """Sort keys of a listing ordered by integer submission time, or None if it is not."""
    times = [job.get("submittedAtTime") if isinstance(job, dict) else None for job in listing]
    if any(isinstance(t, bool) or not isinstance(t, int) for t in times):
        return None
    if all(a <= b for a, b in itertools.pairwise(times)):
        return times, False
    if all(a >= b for a, b in itertools.pairwise(times)):
        return [-t for t in times], True
    return None


# A simulator that does nothing wrong.
NO_FAULTS = Faults()


@dataclass
class SimulatorState:
    """Holds what the simulator serves and has seen: jobs, keys, faults, nonces, counters."""

    jobs: JobSource
    credentials: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # STS credentials' expiry (Unix seconds) by AccessKeyId; see exporter/demo/sts_simulator.py.
    expirations: dict[str, float] = field(default_factory=dict)
    expired_token_requests: int = 0
    faults: Faults = Faults()
    clock: Callable[[], float] = time.time
    requests: int = 0
    # Recently used nonces, as the service refuses a replayed request.
    nonces: OrderedDict[str, None] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)
    # The filtered list of the last query, reused by its other pages within the same second.
    cache_key: tuple | None = None
    cache_value: list[dict] = field(default_factory=list)
    cache_listing: object = None
    # Bisection keys of the last listing seen, when it is ordered by submission time.
    index_listing: object = None
    index: tuple[list[int], bool] | None = None
    limit: TokenBucket | None = None
    throttled: int = 0
    # The limit counts every operation's requests together; these say whose were refused.
    throttled_actions: Counter[str] = field(default_factory=Counter)

    def matching(
        self, window_start: int, window_end: int, owners: frozenset, quotas: frozenset
    ) -> list[dict]:
        """Jobs submitted in [window_start, window_end] (closed) that pass the filters."""
        listing = self.jobs(self.clock())
        # A source returns the same list object until its jobs change: filter it once per change.
        key = (window_start, window_end, owners, quotas, id(listing))
        with self.lock:
            if key == self.cache_key and self.cache_listing is listing:
                return self.cache_value
        matching = []
        if window_start < window_end:
            for job in self._candidates(listing, window_start, window_end):
                submitted = job.get("submittedAtTime")
                timed = isinstance(submitted, int) and not isinstance(submitted, bool)
                if timed and not window_start <= submitted <= window_end:
                    continue
                if owners and job.get("jobOwner") not in owners:
                    continue
                if quotas and job.get("quotaNickname") not in quotas:
                    continue
                matching.append(job)
        with self.lock:
            self.cache_key, self.cache_value, self.cache_listing = key, matching, listing
        return matching

    def _candidates(self, listing: Sequence[dict], start: int, end: int) -> Sequence[dict]:
        """The part of ``listing`` that can hold jobs submitted in [start, end].

        A listing ordered by submission time (as the churning workload is) is cut by bisection,
        so a slice of a 20 000-job list costs the simulator what its 20 jobs cost; any other
        listing is scanned whole.
        """
        with self.lock:
            if self.index_listing is not listing:
                # A listing that knows its keys (the churning one) says them.
                known = getattr(listing, "submission_keys", None)
                self.index_listing = listing
                self.index = known if known is not None else submission_index(listing)
            index = self.index
        if index is None:
            return listing
        keys, descending = index
        if descending:
            low, high = bisect.bisect_left(keys, -end), bisect.bisect_right(keys, -start)
        else:
            low, high = bisect.bisect_left(keys, start), bisect.bisect_right(keys, end)
        return listing[low:high]

    def use_nonce(self, nonce: str) -> bool:
        """Remember ``nonce``; False when it was used before (a replayed request)."""
        with self.lock:
            if nonce in self.nonces:
                return False
            self.nonces[nonce] = None
            while len(self.nonces) > 100_000:
                self.nonces.popitem(last=False)
        return True


class TokenBucket:
    """The service's own request limit: ``rate`` a second, bursts of ``burst`` requests (one
    second's worth unless told)."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, burst: float | None = None
    ) -> None:
        self.rate = rate
        self.burst = rate if burst is None else burst
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True if a request may pass now; False if it is over the limit."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def shuffled_within_seconds(jobs: Sequence[dict], rng: random.Random) -> list[dict]:
    """``jobs`` (listed by submission time) with each second's jobs in a random order."""
    listed: list[dict] = []
    for _, same_second in itertools.groupby(jobs, key=lambda job: job.get("submittedAtTime")):
        group = list(same_second)
        rng.shuffle(group)
        listed.extend(group)
    return listed


def error_body(code: str, message: str, http_code: int) -> dict:
    return {
        "requestId": uuid.uuid4().hex[:30],
        "httpCode": http_code,
        "errorCode": code,
        "errorMsg": message,
    }


def break_record(record: dict, rng: random.Random) -> dict:
    """A copy of ``record`` with one field missing, null or of the wrong type."""
    broken = dict(record)
    key = rng.choice(
        ["instanceId", "project", "quotaNickname", "cuSnapshot", "submittedAtTime", "progress"]
    )
    damage = rng.choice(["missing", "null", "string", "list"])
    if damage == "missing":
        broken.pop(key, None)
    elif damage == "null":
        broken[key] = None
    elif damage == "string":
        broken[key] = "not-a-number" if key not in ("instanceId", "project") else 12345
    else:
        broken[key] = []
    return broken
