"""Hostile API answers, round two: stacked gzip, a trickled body, a status per request.

Each is a counted failure with a fixed reason, in bounded memory and time, and none can grow
``api_requests_total`` past its fixed set of codes.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from exporter.api.wire.outcomes import KEPT_STATUS_CODES, status_label
from exporter.config import PollSettings
from tests.support.hostile_api import HostileApi, Poller, raw, record
from tests.support.jobs import envelope

MIB = 1024 * 1024


@pytest.fixture
def api() -> Iterator[HostileApi]:
    server = HostileApi()
    yield server
    server.close()


def gzipped_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzipped, without ever holding them (1 GiB becomes ~1 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    parts = [packer.compress(block) for _ in range(size // MIB)]
    return b"".join([*parts, packer.flush()])


def poll_measured(stack: Poller) -> tuple[bool, int]:
    """One poll's result and the peak of memory Python allocated while it ran, in bytes."""

    async def run() -> bool:
        try:
            return await stack.poller.poll()
        finally:
            await stack.poller.aclose()

    tracemalloc.start()
    try:
        ok = asyncio.run(run())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return ok, peak


def test_stacked_gzip_is_refused_before_a_byte_is_inflated(
    api: HostileApi, caplog: pytest.LogCaptureFixture
) -> None:
    bomb = gzip.compress(gzipped_zeros(1024 * MIB))  # 1 GiB inside two layers
    assert len(bomb) < 64 * 1024
    api.answer = lambda q: raw(bomb, headers=("Content-Encoding: gzip, gzip",))
    stack = Poller(api.url)
    ok, peak = poll_measured(stack)
    assert ok is False
    assert stack.errors() == {"invalid_response": 1}
    assert stack.requests() == {"200": 1}  # the request is counted, by its status
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"
    errors = [record.error for record in caplog.records if hasattr(record, "error")]
    assert errors == [
        "refused Content-Encoding 'gzip, gzip': one gzip or deflate layer at most status=200"
    ]


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, identity, deflate"])
def test_unknown_or_stacked_encodings_are_refused(api: HostileApi, encoding: str) -> None:
    api.answer = lambda q: raw(b"{}", headers=(f"Content-Encoding: {encoding}",))
    stack = Poller(api.url)
    ok, _ = poll_measured(stack)
    assert ok is False
    assert stack.errors() == {"invalid_response": 1}


def test_one_gzip_layer_inflating_past_the_cap_stops_at_the_cap(api: HostileApi) -> None:
    bomb = gzipped_zeros(1024 * MIB)
    api.answer = lambda q: raw(bomb, headers=("Content-Encoding: gzip",))
    stack = Poller(api.url)
    ok, peak = poll_measured(stack)
    assert ok is False
    assert stack.errors() == {"invalid_response": 1}
    # The 16 MiB cap, the chunks it is read in and the raw ~1 MiB answer; never the gigabyte.
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
def test_a_page_in_one_layer_of_gzip_or_deflate_is_read(api: HostileApi, encoding: str) -> None:
    def answer(query: dict[str, str]) -> bytes:
        body = json.dumps(envelope([record("good-1", int(query["from"]))], 1)).encode()
        packed = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding, bytes)(body)
        return raw(packed, headers=(f"Content-Encoding: {encoding}",))

    api.answer = answer
    stack = Poller(api.url)
    ok, _ = poll_measured(stack)
    assert ok is True
    assert stack.store.status(stack.target).snapshot.jobs == 1


def test_poll_timeout_bounds_the_whole_request_and_a_trickled_body_is_retried(
    api: HostileApi,
) -> None:
    # Headers at once, then one byte every 0.2 s: no single read ever waits a whole timeout.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
    api.answer = lambda q: iter([head, *([b" "] * 100_000)])
    api.gap = 0.2
    settings = PollSettings(interval=30.0, window=3600.0, timeout=1.0, retries=2, deadline=20.0)
    stack = Poller(api.url, settings)
    started = time.monotonic()
    ok, _ = poll_measured(stack)
    took = time.monotonic() - started
    assert ok is False
    assert stack.errors() == {"timeout": 1}  # not "deadline": each attempt was cut at 1 s
    assert stack.requests() == {"timeout": 3}  # the first attempt and both retries, counted
    assert api.requests == 3
    assert took < 20.0


def test_a_status_per_request_folds_into_a_fixed_set_of_codes(api: HostileApi) -> None:
    statuses = [202, 226, 302, 399, 400, 404, 418, 429, 451, 499]
    statuses += [500, 501, 503, 507, 520, 599, 600, 799, 999]
    settings = PollSettings(interval=30.0, window=3600.0, timeout=1.0, retries=0, deadline=5.0)
    stack = Poller(api.url, settings)

    async def run() -> None:
        try:
            for status in statuses:
                api.answer = lambda q, status=status: raw(b"{}", status=f"{status} X")
                await stack.poller.poll()
        finally:
            await stack.poller.aclose()

    asyncio.run(run())
    assert stack.requests() == {
        "other": 7,  # 202, 226, 302, 399, 600, 799, 999
        "400": 1,
        "404": 1,
        "429": 1,
        "4xx": 3,  # 418, 451, 499
        "500": 1,
        "503": 1,
        "5xx": 4,  # 501, 507, 520, 599
    }


def test_status_labels_keep_the_statuses_users_act_on() -> None:
    assert sorted(KEPT_STATUS_CODES) == [200, 400, 401, 403, 404, 429, 500, 502, 503, 504]
    assert [status_label(s) for s in (200, 429, 503, 410, 599, 302, 0)] == [
        "200",
        "429",
        "503",
        "4xx",
        "5xx",
        "other",
        "other",
    ]
