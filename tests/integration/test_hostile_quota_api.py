"""A hostile quota API on loopback (issue 23, rows 3, 7, 11, 12): each answer is a published
part, a skipped and counted value, or a counted failure, in bounded requests and memory.

- ListQuotas is bounded as a jobs poll is: more quotas than ``metrics.max_quotas_per_target``,
  or more than 32 MiB of answers, fail the walk as ``too_many_groups`` at the page that passes.
- A quota whose usage answers 404 is dropped alone and counted; one whose request fails keeps
  its last point while a fresh answer could still hold it.
- 10**400 as a CU or a usage value is skipped and counted; so is a usage point outside the
  asked window (far future, negative).
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.support.hostile_api import SETTINGS, HostileApi, QuotaPolls, raw

MIB = 1024 * 1024
OK = {"requestId": "r", "httpCode": 200, "errorCode": "success"}
QUOTAS_PATH = "/api/v1/quotas"
NOW = int(time.time())


@pytest.fixture
def api() -> Iterator[HostileApi]:
    server = HostileApi()
    yield server
    server.close()


def listing(quotas: list[dict], marker: str = "", **extra: object) -> bytes:
    return raw(json.dumps({**OK, "quotaInfoList": quotas, "marker": marker, **extra}).encode())


def quota(nickname: str, subs: tuple[str, ...] = (), **parameter: object) -> dict:
    return {
        "nickName": nickname,
        "parameter": parameter,
        "subQuotaInfoList": [{"nickName": s, "parameter": {"maxCU": 100}} for s in subs],
    }


def usage_answer(stamps: list[int], used: list[object], requested: list[object]) -> bytes:
    metrics = {"timestamps": stamps, "usedCpu": used, "requestCpu": requested}
    return raw(json.dumps({**OK, "data": {"metrics": metrics}}).encode())


def gauge(got: dict, name: str) -> dict[str, float]:
    """``name``'s samples by quota (or by operation for the exporter's own series)."""
    out = {}
    for key, value in got.items():
        if key[0] == name:
            labels = dict(key[1:])
            out[labels.get("quota") or labels.get("operation", "")] = value
    return out


def measured(polls: QuotaPolls, *parts: str) -> tuple[list[bool], float]:
    """The parts' results and the peak of memory Python allocated meanwhile, in MiB."""
    tracemalloc.start()
    try:
        results = polls.run(*parts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return results, peak / MIB


def test_100_000_quotas_fail_the_listing_at_the_page_that_passes_the_bound(api) -> None:
    def answer(path: str, query: dict[str, str]) -> bytes:
        start = int(query.get("marker") or 0)
        page = [quota(f"q{n:06d}") for n in range(start, start + int(query["maxItem"]))]
        return listing(page, str(start + 50) if start + 50 < 100_000 else "")

    api.route = answer
    polls = QuotaPolls(api.url)
    results, peak = measured(polls, "quotas", "usage")
    assert results == [False, False]
    assert api.requests == 3  # 150 quotas passed the 100 allowed: no fourth page, no usage
    got = polls.metrics()
    errors = "maxcompute_exporter_quota_poll_errors_total"
    assert {k[2][1]: v for k, v in got.items() if k[0] == errors and v} == {"too_many_groups": 1}
    assert not [k for k in got if k[0].startswith("maxcompute_quota_")]
    assert peak < 4, f"peak {peak:.1f} MiB"


def test_an_endless_marker_of_60_000_quotas_a_page_stops_after_one_page(api) -> None:
    big_page = listing([quota(f"q{n:05d}") for n in range(60_000)], "more")
    api.route = lambda path, query: big_page
    polls = QuotaPolls(api.url)
    results, peak = measured(polls, "quotas")
    assert results == [False]
    assert api.requests == 1
    assert gauge(polls.metrics(), "maxcompute_exporter_quota_poll_up") == {"ListQuotas": 0}
    # The answer (3.7 MiB) parsed, and 60 000 quotas made of it (~34 MiB), once: never a
    # second page, where the unbounded walk held 973 MiB after 32.
    assert len(big_page) < 4 * MIB
    assert peak < 64, f"peak {peak:.1f} MiB"


def test_a_listing_past_32_mib_of_answers_fails_however_few_its_quotas(api) -> None:
    pad = "x" * MIB

    def answer(path: str, query: dict[str, str]) -> bytes:
        n = int(query.get("marker") or 0)
        return listing([quota(f"q{n}")], str(n + 1), pad=pad)

    api.route = answer
    # 32 MiB under tracemalloc on a busy machine can take longer than the usual 5 s deadline:
    # this test is about the bytes, so time is no bound here.
    unhurried = replace(SETTINGS, interval=120.0, timeout=30.0, deadline=60.0)
    polls = QuotaPolls(api.url, max_quotas=10_000, settings=unhurried)
    results, peak = measured(polls, "quotas")
    assert results == [False]
    assert api.requests == 32  # 32 answers of a little over 1 MiB passed the 32 MiB a walk reads
    got = polls.metrics()
    errors = "maxcompute_exporter_quota_poll_errors_total"
    assert {k[2][1]: v for k, v in got.items() if k[0] == errors and v} == {"too_many_groups": 1}
    assert peak < 8, f"peak {peak:.1f} MiB"


class Clock:
    """The exporter's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def test_a_deleted_quota_answering_404_drops_that_quota_only_counted(api) -> None:
    clock = Clock()

    def answer(path: str, query: dict[str, str]) -> bytes:
        if path == QUOTAS_PATH:
            return listing([quota("prod", ("a", "b", "c"))])
        if query.get("subQuotaNickname") == "b":
            gone = {"requestId": "r", "httpCode": 404, "errorCode": "QuotaNotFound"}
            return raw(json.dumps(gone).encode(), status="404 Not Found")
        minute = int(clock.now) - 60
        return usage_answer([minute * 1000], [10], [12])

    api.route = answer
    polls = QuotaPolls(api.url, clock=clock)

    async def rounds() -> list[bool]:
        results = [await polls.poller.poll_quotas()]
        for _ in range(4):  # four intervals: past the three a failed part is served
            results.append(await polls.poller.poll_usage())
            clock.now += 60
        await polls.client.aclose()
        return results

    assert asyncio.run(rounds()) == [True, True, True, True, True]
    clock.now -= 60  # scraped right after the last round
    got = polls.metrics()
    assert gauge(got, "maxcompute_quota_used_cpu_cores") == {"prod": 10, "a": 10, "c": 10}
    assert gauge(got, "maxcompute_quota_requested_cpu_cores") == {"prod": 12, "a": 12, "c": 12}
    assert gauge(got, "maxcompute_quota_usage_age_seconds") == {"prod": 60, "a": 60, "c": 60}
    assert gauge(got, "maxcompute_exporter_quota_invalid_values_total")["GetQuotaUsage"] == 4
    assert gauge(got, "maxcompute_exporter_quota_poll_up")["GetQuotaUsage"] == 1
    errors = "maxcompute_exporter_quota_poll_errors_total"
    assert not [k for k, v in got.items() if k[0] == errors and v]
    assert api.paths.count(f"{QUOTAS_PATH}/prod/usage") == 16  # 4 quotas x 4 rounds, no retry


def test_a_quota_whose_request_fails_keeps_its_last_point_while_recent(api) -> None:
    clock = Clock()
    failing: set[str] = set()

    def answer(path: str, query: dict[str, str]) -> bytes:
        if path == QUOTAS_PATH:
            return listing([quota("prod", ("a", "b"))])
        if query.get("subQuotaNickname") in failing:
            return raw(b'{"errorCode": "ServiceUnavailable"}', status="503 Service Unavailable")
        return usage_answer([(int(clock.now) - 60) * 1000], [10], [12])

    api.route = answer
    polls = QuotaPolls(api.url, clock=clock)

    async def rounds() -> list[tuple[bool, dict]]:
        seen = [(await polls.poller.poll_quotas(), {})]
        for step in range(3):
            if step == 1:
                failing.add("b")
            seen.append(
                (
                    await polls.poller.poll_usage(),
                    gauge(polls.metrics(), "maxcompute_quota_usage_age_seconds"),
                )
            )
            clock.now += 300
        await polls.client.aclose()
        return seen

    seen = asyncio.run(rounds())
    assert [ok for ok, _ in seen] == [True, True, True, True]
    assert seen[1][1] == {"prod": 60, "a": 60, "b": 60}
    assert seen[2][1] == {"prod": 60, "a": 60, "b": 360}  # b's last point, 300 s older
    assert seen[3][1] == {"prod": 60, "a": 60}  # 660 s: older than any answer could hold
    errors = "maxcompute_exporter_quota_poll_errors_total"
    assert not [k for k, v in polls.metrics().items() if k[0] == errors and v]


def test_numbers_of_400_digits_are_skipped_and_counted_never_a_failed_round(api) -> None:
    def answer(path: str, query: dict[str, str]) -> bytes:
        if path == QUOTAS_PATH:
            return listing([quota("prod", minCU=10**400, maxCU=600)])
        return usage_answer([(NOW - 60) * 1000], [10**400], [5])

    api.route = answer
    polls = QuotaPolls(api.url, clock=lambda: float(NOW))
    assert polls.run("quotas", "usage") == [True, True]
    got = polls.metrics()
    assert gauge(got, "maxcompute_quota_reserved_cu") == {}
    assert gauge(got, "maxcompute_quota_max_cu") == {"prod": 600}
    assert gauge(got, "maxcompute_quota_used_cpu_cores") == {}
    assert gauge(got, "maxcompute_quota_requested_cpu_cores") == {"prod": 5}
    assert gauge(got, "maxcompute_exporter_quota_invalid_values_total") == {
        "ListQuotas": 1,
        "GetQuotaUsage": 1,
    }
    assert gauge(got, "maxcompute_exporter_quota_poll_up") == {"ListQuotas": 1, "GetQuotaUsage": 1}


def test_usage_points_outside_the_asked_window_are_skipped_and_counted(api) -> None:
    stamps = [(NOW - 120) * 1000, (NOW + 86_400) * 1000, -5000, (NOW - 3600) * 1000]

    def answer(path: str, query: dict[str, str]) -> bytes:
        if path == QUOTAS_PATH:
            return listing([quota("prod")])
        return usage_answer(stamps, [5, 777, 3, 9], [6, 888, 4, 10])

    api.route = answer
    polls = QuotaPolls(api.url, clock=lambda: float(NOW))
    assert polls.run("quotas", "usage") == [True, True]
    got = polls.metrics()
    assert gauge(got, "maxcompute_quota_used_cpu_cores") == {"prod": 5}
    assert gauge(got, "maxcompute_quota_requested_cpu_cores") == {"prod": 6}
    assert gauge(got, "maxcompute_quota_usage_age_seconds") == {"prod": 120}
    # The future point, the negative one and the one older than the asked 10 minutes.
    assert gauge(got, "maxcompute_exporter_quota_invalid_values_total")["GetQuotaUsage"] == 3
