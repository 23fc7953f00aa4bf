"""The client-side request rate: learned from the service's throttling, per target and operation.

The service's limit is not published and may change, so the rate is found the way TCP finds a
path's capacity. Before the first throttle it starts polite and doubles while requests succeed
and the rate is what holds them back (slow start). A ``Throttling*``/429 answer cuts it to
``DECREASE_FACTOR`` of itself, and it then grows back along CUBIC's curve, as the AWS SDKs'
adaptive retry mode does: quickly at first, levelling off at the rate that was throttled (reached
``K`` seconds after the cut), then probing beyond it ever faster. So a burst of throttling does
not leave the exporter crawling for minutes. The learned rate lives as long as the target's
client, so each poll starts where the last one ended; each operation learns its own (the service
throttles each API apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence

INITIAL_RATE = 50.0  # requests/s before anything is learned
MIN_RATE = 1.0
DECREASE_FACTOR = 0.7  # CUBIC's beta, as the AWS SDKs use it
CUBIC_SCALE = 0.4  # CUBIC's C, as the AWS SDKs use it
MAX_PROBE_STEP_SECONDS = 1.0  # time that counts towards growth between two limited successes
INITIAL_IN_FLIGHT = 4  # requests in flight before a latency is measured; the limiter's burst
LATENCY_WEIGHT = 0.2  # weight of a new answer's latency in the moving average
PACE_SAMPLE = 16  # the last sends whose pace tells whether the rate is what holds them back
PACE_SHARE = 0.8  # ...as it is when they went out at least this share of the rate


class AdaptiveRate:
    """The current allowed request rate: slow start, then CUBIC after a throttle; at most
    ``ceiling``."""

    def __init__(self, ceiling: float, initial: float = INITIAL_RATE) -> None:
        self.ceiling = ceiling
        self.rate = min(initial, ceiling)
        self.cuts = 0  # how many times the rate was cut: the limiter restarts its pace on a cut
        self._last_cut_at = -1.0
        self._rate_at_cut: float | None = None  # CUBIC's W_max; None while in slow start
        self._k = 0.0  # seconds of growth after a cut until the rate is back at W_max
        self._grown = 0.0  # seconds of growth since the last cut
        self._last_success_at: float | None = None

    def on_success(self, limited: bool, now: float) -> None:
        """A request succeeded; ``limited`` says whether the rate (not concurrency) delayed it.

        A rate that is not what holds requests back is not raised, and time spent so does not
        count towards growth: it would say nothing about what the service accepts (RFC 7661's
        rule for an application-limited TCP sender).
        """
        since = 0.0 if self._last_success_at is None else now - self._last_success_at
        self._last_success_at = now
        if not limited:
            return
        if self._rate_at_cut is None:
            self.rate = min(self.ceiling, self.rate + 1.0)
            return
        self._grown += min(max(since, 0.0), MAX_PROBE_STEP_SECONDS)
        cubic = CUBIC_SCALE * (self._grown - self._k) ** 3 + self._rate_at_cut
        self.rate = min(self.ceiling, max(MIN_RATE, cubic))

    def on_throttled(self, scheduled_at: float, now: float) -> None:
        """The service throttled a request scheduled at ``scheduled_at`` (monotonic seconds)."""
        if scheduled_at <= self._last_cut_at:
            return  # scheduled at the old rate: the last cut already answered it
        self._rate_at_cut = self.rate
        self._k = (self.rate * (1 - DECREASE_FACTOR) / CUBIC_SCALE) ** (1 / 3)
        self._grown = 0.0
        self.rate = max(MIN_RATE, self.rate * DECREASE_FACTOR)
        self._last_cut_at = now
        self._last_success_at = now  # growth is counted from the cut
        self.cuts += 1


class RateLimiter:
    """Spaces requests to at most ``rate.rate`` a second, bursts of up to ``burst`` at once.

    A generic cell rate algorithm: each request is given the earliest start that keeps the
    schedule, so waiters are served in arrival order without a lock.
    """

    def __init__(
        self, rate: AdaptiveRate, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self._burst = max(burst, 1)
        self._clock = clock
        self._next = 0.0  # theoretical arrival time of the next request
        self._cuts_seen = 0
        self._sends: deque[float] = deque(maxlen=PACE_SAMPLE)  # when the last requests went
        # A wait for a slot began since the last success was told of it (``take_held_back``).
        self._held_back = False

    def reserve(self) -> float:
        """Book the next slot; the seconds to wait before using it."""
        interval = 1.0 / self.rate.rate
        now = self._clock()
        if self.rate.cuts != self._cuts_seen:
            # Just throttled: the service's bucket is empty, so no burst until the pace is kept.
            self._cuts_seen = self.rate.cuts
            self._next = max(self._next, now + (self._burst - 1) * interval)
        arrival = max(self._next, now)
        self._next = arrival + interval
        return max(0.0, arrival - (self._burst - 1) * interval - now)

    async def acquire(self) -> bool:
        """Wait for a slot; True if the rate is what held the caller back.

        A wait for a slot alone does not say so: requests let in at once by the in-flight
        limit book slots ahead of the pace and wait for them while the process (a busy CPU)
        or the answers keep the requests actually sent far below the rate. Counted as held
        back, those waits let a busy exporter's rate grow to ~3x what the service allows
        (144/s against 50/s), a rate it never sent at, so the service never answered it.
        So the caller was held back only if it waited and the last ``PACE_SAMPLE`` requests
        went out at ``PACE_SHARE`` of the rate or faster (RFC 7661 validates a TCP sender's
        window by the data it had in flight the same way).
        """
        delay = self.reserve()
        if delay > 0:
            if self._pace_binds(self._clock()):
                self._held_back = True
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self._give_back()
                raise
        kept_pace = self.kept_pace(self._clock())
        # Below the starting rate the pace cannot tell: after a run of cuts (an outage) the
        # in-flight limit (rate x latency) and a poll's deadline, not the rate, bound the sends,
        # and a rate that grew only on kept pace would never grow back (a 1 s demo poll stayed
        # at 4/s after its outage). There, as before, a wait for a slot is being held back.
        return delay > 0 and (kept_pace or self.rate.rate < INITIAL_RATE)

    def take_held_back(self) -> bool:
        """True if a request waited for a slot (as ``acquire`` counts it) since the last call.

        A success counts as held back by the rate when any request waited since the last one,
        not only when it waited itself: at the floor rate a poll's burst goes out at once and
        the requests that wait for the rate are cut off by the poll's deadline before they are
        answered. Counting only their own successes, the rate never grew back and every later
        poll failed (the demo stayed blind for good after its throttling burst).
        """
        held, self._held_back = self._held_back, False
        return held

    def _pace_binds(self, now: float) -> bool:
        """Whether a wait starting ``now`` is the rate holding requests back (see ``acquire``)."""
        if self.rate.rate < INITIAL_RATE:
            return True
        return self._paced([*self._sends, now][-PACE_SAMPLE:])

    def _give_back(self) -> None:
        """A request gave up its booked slot unsent (its poll ran out of time): free it.

        Kept, the slots of a poll's cut-off requests pushed the schedule ever further ahead:
        at 1 request/s, a poll of 2 500 requests cut off after 54 s left the next slot some
        40 minutes away, and every later poll failed waiting for it.
        """
        self._next = max(self._clock(), self._next - 1.0 / self.rate.rate)

    def kept_pace(self, now: float) -> bool:
        """Note a request sent at ``now``; True if the last ``PACE_SAMPLE`` went out at
        ``PACE_SHARE`` of the rate or faster."""
        self._sends.append(now)
        return self._paced(self._sends)

    def _paced(self, sends: Sequence[float]) -> bool:
        """Whether ``sends`` are a full sample that went out at ``PACE_SHARE`` of the rate."""
        if len(sends) < PACE_SAMPLE:
            return False
        elapsed = sends[-1] - sends[0]
        return elapsed <= 0 or (PACE_SAMPLE - 1) / elapsed >= PACE_SHARE * self.rate.rate


class InFlightLimit:
    """How many requests may be in flight at once: Little's law, the learned rate x latency.

    Paced at ``rate`` requests/s, each answered in ``latency`` s, about rate x latency requests
    are in flight at once: fewer would cap the rate below what the service allows (a fixed 4 in
    flight at 100 ms caps it at 40/s), more would only wait for the pace. One more than that
    covers the latency's jitter and the request waiting for its slot; never fewer than 1, nor
    more than ``ceiling`` (``poll.page_concurrency``). Until a latency is measured it is
    ``INITIAL_IN_FLIGHT``, then it follows the rate's slow start and its cuts.
    """

    def __init__(self, rate: AdaptiveRate, ceiling: int) -> None:
        self._rate = rate
        self.ceiling = max(1, ceiling)
        self.latency: float | None = None  # seconds, a moving average of answers and timeouts
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ahead: deque[asyncio.Future[None]] = deque()  # woken before ``_waiters``

    @property
    def limit(self) -> int:
        if self.latency is None:
            return min(self.ceiling, INITIAL_IN_FLIGHT)
        wanted = math.ceil(self._rate.rate * self.latency) + 1
        return max(1, min(self.ceiling, wanted))

    def observe(self, seconds: float) -> None:
        """An answer (or a timeout) took ``seconds``: fold it into the latency (EWMA)."""
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += LATENCY_WEIGHT * (seconds - self.latency)

    async def acquire(self, ahead: bool = False) -> None:
        """Wait until one more request may be in flight, and count it; ``ahead``: at the front
        of the line, for a request the rest of a read waits on (a page of a chain of pages)."""
        line = self._ahead if ahead else self._waiters
        while self.in_flight >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            line.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    line.remove(waiter)
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        # Wake as many waiters as there is room for (the limit may have risen meanwhile); a
        # woken waiter leaves the line, so the next release wakes the ones behind it.
        room = self.limit - self.in_flight
        for line in (self._ahead, self._waiters):
            while line and room > 0:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    room -= 1
