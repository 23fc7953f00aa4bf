"""The learned request rate: slow start, CUBIC after a cut, the limiter's pace, and the way back
from the floor after a throttling storm."""

from __future__ import annotations

import asyncio
import time

import pytest

from exporter.api.transport.ratelimit import (
    CUBIC_SCALE,
    DECREASE_FACTOR,
    INITIAL_RATE,
    MIN_RATE,
    PACE_SAMPLE,
    AdaptiveRate,
    RateLimiter,
)
from exporter.api.transport.retries import PacedRetries
from exporter.config import PollSettings


def succeed(rate: AdaptiveRate, start: float, seconds: float, limited: bool = True) -> float:
    """Limited successes every 0.1 s from ``start`` for ``seconds``; the time after them."""
    now = start
    for _ in range(round(seconds * 10)):
        now += 0.1
        rate.on_success(limited=limited, now=now)
    return now


def test_the_rate_doubles_in_slow_start_and_is_cut_on_throttling() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=50.0)
    now = succeed(rate, 0.0, 5.0)
    assert rate.rate == 100.0  # slow start: one more request a second per success
    rate.on_throttled(scheduled_at=now, now=now + 0.1)
    assert rate.rate == pytest.approx(100.0 * DECREASE_FACTOR)
    rate.on_throttled(scheduled_at=now + 0.05, now=now + 0.2)  # scheduled before the cut
    assert rate.rate == pytest.approx(70.0)


def test_after_a_cut_the_rate_grows_back_along_cubics_curve() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=100.0)
    rate.on_throttled(scheduled_at=1.0, now=1.0)
    k = (100.0 * (1 - DECREASE_FACTOR) / CUBIC_SCALE) ** (1 / 3)  # 4.22 s back to 100/s
    now = succeed(rate, 1.0, 2.0)
    assert rate.rate == pytest.approx(CUBIC_SCALE * (2.0 - k) ** 3 + 100.0)  # 96.3: quickly
    succeed(rate, now, 3.0)
    assert rate.rate == pytest.approx(CUBIC_SCALE * (5.0 - k) ** 3 + 100.0)  # just past 100


def test_the_rate_is_not_raised_and_does_not_grow_while_it_holds_nothing_back() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=50.0)
    now = succeed(rate, 0.0, 50.0, limited=False)
    assert rate.rate == 50.0
    rate.on_throttled(scheduled_at=now, now=now)
    now = succeed(rate, now, 100.0, limited=False)  # idle between polls: no growth
    succeed(rate, now, 0.1)
    k = (50.0 * (1 - DECREASE_FACTOR) / CUBIC_SCALE) ** (1 / 3)
    assert rate.rate == pytest.approx(CUBIC_SCALE * (0.1 - k) ** 3 + 50.0)  # 0.1 s of growth


def test_the_rate_stays_within_its_ceiling_and_floor() -> None:
    rate = AdaptiveRate(ceiling=60.0, initial=50.0)
    succeed(rate, 0.0, 10.0)
    assert rate.rate == 60.0
    for n in range(100):
        rate.on_throttled(scheduled_at=float(2 * n + 1), now=float(2 * n + 2))
    assert rate.rate == 1.0


def test_after_a_cut_the_limiter_paces_at_once_instead_of_bursting() -> None:
    now = [100.0]
    rate = AdaptiveRate(ceiling=1000.0, initial=10.0)
    limiter = RateLimiter(rate, burst=4, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]  # a burst of 4
    now[0] = 101.0  # idle for a second: the burst is available again...
    rate.on_throttled(scheduled_at=100.5, now=101.0)  # ...but the service just throttled
    interval = 1 / rate.rate
    delays = [limiter.reserve() for _ in range(4)]
    assert delays == pytest.approx([0.0, interval, 2 * interval, 3 * interval])


def test_waits_for_slots_booked_ahead_hold_nothing_back_when_sends_lag_the_pace() -> None:
    now = [0.0]
    rate = AdaptiveRate(ceiling=1000.0, initial=100.0)
    limiter = RateLimiter(rate, burst=1, clock=lambda: now[0])
    # 32 requests let in at once book 32 slots 10 ms apart; a busy CPU sends one every 20 ms.
    delays = [limiter.reserve() for _ in range(32)]
    assert delays == pytest.approx([n / 100 for n in range(32)])
    held_back = [limiter.kept_pace(n * 0.02) for n in range(32)]
    assert held_back == [False] * 32  # 50/s is under PACE_SHARE of 100/s
    # Sent at their slots instead: held back once a full sample has kept the pace.
    later = 10.0
    paced = [limiter.kept_pace(later + n / 100) for n in range(32)]
    assert paced == [False] * (PACE_SAMPLE - 1) + [True] * (32 - PACE_SAMPLE + 1)


async def test_below_the_starting_rate_a_wait_for_a_slot_is_held_back_whatever_the_pace() -> None:
    """After an outage's cuts a 1 s poll sends two requests before its deadline: the pace of
    the sample never holds, yet the rate must grow back or the polls never finish again."""
    rate = AdaptiveRate(ceiling=1000.0, initial=100.0)
    for _ in range(10):
        rate.on_throttled(scheduled_at=time.monotonic(), now=time.monotonic())
    assert rate.rate < INITIAL_RATE
    limiter = RateLimiter(rate, burst=1)
    assert await limiter.acquire() is False  # the first slot is free: nothing held it back
    assert await limiter.acquire() is True  # waited for its slot, with too few sends to pace
    limiter = RateLimiter(AdaptiveRate(ceiling=1000.0, initial=100.0), burst=1)
    await limiter.acquire()
    assert await limiter.acquire() is False  # at the starting rate and above, the pace decides


def at_the_floor(rate: AdaptiveRate | None = None) -> AdaptiveRate:
    """``rate`` (or a new one) cut to the floor (1 request/s) by a throttling storm."""
    rate = rate if rate is not None else AdaptiveRate(ceiling=1000.0)
    for n in range(20):
        rate.on_throttled(scheduled_at=float(n), now=float(n))
    assert rate.rate == MIN_RATE
    return rate


async def test_a_slot_given_up_unsent_is_free_again() -> None:
    """A poll cut off by its deadline gives back the slots its waiting requests booked: kept,
    they pushed every later request further out (a poll of 2 500 requests cut off at 1/s left
    the next slot 40 minutes ahead)."""
    now = [100.0]
    limiter = RateLimiter(at_the_floor(), burst=1, clock=lambda: now[0])
    assert await limiter.acquire() is False  # the first slot is free
    for _ in range(10):  # ten requests wait for their slot (1 s, 2 s, ...) and are cut off
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(limiter.acquire(), 0.01)
    assert limiter.reserve() == pytest.approx(1.0)  # not 11 s: the next slot is the first cut


async def test_a_wait_cut_off_before_its_answer_still_tells_the_next_success() -> None:
    limiter = RateLimiter(at_the_floor(), burst=1)
    await limiter.acquire()
    assert limiter.take_held_back() is False
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), 0.01)
    assert limiter.take_held_back() is True  # told once
    assert limiter.take_held_back() is False


async def test_polls_cut_off_at_the_floor_rate_grow_it_back_until_they_finish() -> None:
    """After a throttling storm the rate is at its floor (1/s). Each 0.5 s poll needs 8
    requests: its burst of 4 goes out at once, the rest wait for the rate and are cut off by
    the deadline. Before, only a request that waited and was answered grew the rate, so none
    ever did and every poll failed, for good (the demo, blind after its throttling burst)."""
    budget = PacedRetries(PollSettings(page_concurrency=4, retries=0))
    at_the_floor(budget.rate)

    async def answer() -> None:
        await asyncio.sleep(0.001)

    async def poll() -> bool:
        try:
            await asyncio.wait_for(asyncio.gather(*(budget.call(answer) for _ in range(8))), 0.5)
        except TimeoutError:
            return False
        return True

    finished = []
    # At 1/s about one request in two polls is answered, each growing the rate by CUBIC's
    # second of growth: 1.5, 4.7, 13, 33 requests/s; the poll fits at about 13/s.
    while not any(finished) and len(finished) < 30:
        started = time.monotonic()
        finished.append(await poll())
        await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    assert finished[-1] is True, f"rate {budget.rate.rate:.2f}/s after {len(finished)} polls"
    assert budget.rate.rate > 8
