"""What a failed jobs poll reports (issue 23, rows 13 and 14), against a hostile loopback API.

Every request the server saw is in ``api_requests_total`` (one cancelled at the poll's end as
``code="cancelled"``) and in ``last_poll_requests``, failed polls included; a poll that ran out
of time fails as the last error its requests met (``server_error`` through a phase of 503s),
``deadline`` only when every request was answered and the read was merely slow.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator

import pytest

from exporter.api.wire.running_jobs import PAGE_SIZE
from exporter.config import PollSettings
from tests.support.hostile_api import HostileApi, Poller, good, raw, record
from tests.support.jobs import envelope


@pytest.fixture
def api() -> Iterator[HostileApi]:
    server = HostileApi()
    yield server
    server.close()


def last_poll_requests(stack: Poller) -> float:
    for family in stack.metrics.self_registry.collect():
        for sample in family.samples:
            if sample.name == "maxcompute_exporter_last_poll_requests":
                return sample.value
    raise AssertionError("no last_poll_requests")


def poll_once(stack: Poller) -> bool:
    async def run() -> bool:
        try:
            return await stack.poller.poll()
        finally:
            await stack.poller.aclose()

    return asyncio.run(run())


def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_a_server_answering_500_has_every_request_counted_in_a_failed_poll(api) -> None:
    api.answer = lambda q: raw(b'{"errorCode": "InternalError"}', status="500 Internal Error")
    settings = PollSettings(
        interval=30.0, window=3600.0, timeout=1.0, retries=3, retry_backoff=0.01, deadline=10.0
    )
    stack = Poller(api.url, settings)
    assert poll_once(stack) is False
    assert stack.errors() == {"server_error": 1}
    assert api.requests == 4  # the first attempt and its three retries
    assert stack.requests() == {"500": 4}
    assert last_poll_requests(stack) == 4


def test_requests_cancelled_at_the_polls_end_are_counted(api) -> None:
    """One answer in ten comes at once; the others never before the poll's deadline."""
    released = threading.Event()
    turn = itertools.count()

    def page(query: dict[str, str]) -> bytes:
        """A full page of a slice that claims 2 000 jobs: the read asks for more at once."""
        start, number = int(query["from"]), int(query["pageNumber"])
        records = [record(f"j{start}-{number}-{n}", start) for n in range(PAGE_SIZE)]
        return raw(json.dumps(envelope(records, 2000, number)).encode())

    def answer(query: dict[str, str]) -> bytes | Iterator[bytes]:
        if next(turn) % 10 == 0:
            return page(query)

        def held() -> Iterator[bytes]:
            released.wait(30)
            yield page(query)

        return held()

    api.answer = answer
    settings = PollSettings(interval=30.0, window=3600.0, timeout=20.0, retries=0, deadline=1.5)
    stack = Poller(api.url, settings)
    try:
        assert poll_once(stack) is False
    finally:
        released.set()
    sent = api.requests
    assert sent > 1
    counted = stack.requests()
    assert set(counted) == {"200", "cancelled"}
    assert sum(counted.values()) == sent  # every request the server saw
    assert last_poll_requests(stack) == sent
    assert stack.errors() == {"deadline": 1}  # every request answered or still healthy


def test_a_phase_of_503s_fails_polls_as_server_error_not_deadline(api) -> None:
    api.answer = lambda q: raw(b'{"errorCode": "ServiceUnavailable"}', status="503 Unavailable")
    # Retries that outlast the deadline: the 503s are what made the poll fail.
    settings = PollSettings(
        interval=30.0, window=3600.0, timeout=1.0, retries=20, retry_backoff=0.2, deadline=1.5
    )
    stack = Poller(api.url, settings)
    assert poll_once(stack) is False
    assert stack.errors() == {"server_error": 1}
    sent = api.requests
    assert sent >= 2
    assert sum(stack.requests().values()) == sent == last_poll_requests(stack)


def test_a_healthy_but_slow_read_that_runs_out_of_time_fails_as_deadline(api) -> None:
    def slow(query: dict[str, str]) -> bytes:
        time.sleep(0.4)
        return good(query)

    api.answer = slow
    settings = PollSettings(interval=30.0, window=3600.0, timeout=5.0, retries=0, deadline=0.2)
    stack = Poller(api.url, settings)
    assert poll_once(stack) is False
    assert stack.errors() == {"deadline": 1}
    until(lambda: api.requests >= 1)
    assert stack.requests() == {"cancelled": api.requests}
    assert last_poll_requests(stack) == api.requests
