"""The HTTP transport under the client: the exporter's CPU per request as the connections in
flight grow, and per 10 000 jobs read, for httpcore's pool (httpx's default, the transport
before issue 24) and aiohttp's (the transport now), in one run.

Every figure is a ratio against a baseline measured in the same run:

- exporter CPU per request at 32 requests in flight / at 4, each transport       (<= 1.2 now)
- CPU per request, aiohttp / httpcore, at 4 and at 32 in flight                  (-)
- exporter CPU seconds per 10 000 jobs of a whole-window read (the poll's read, 32 in flight,
  30 ms answers), each transport, and their ratio                                (-)

The requests are the client's own (``RunningJobsClient.fetch_page``: signed, capped, parsed),
sent to the simulator in a process of its own, so ``time.process_time`` is the exporter's CPU.

Run: ``.venv/bin/python bench/transport.py`` (about 2 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import date

import httpx
from common import figure, make_target, simulator_with

from exporter.api.transport.client import RunningJobsClient
from exporter.api.wire.pages import TimeSlice
from exporter.config import PollSettings
from exporter.polling.read.window_read import WindowReader
from exporter.polling.schedule.poller import poll_window, request_cap

LATENCY = 0.03
SETTINGS = PollSettings(interval=3600.0, timeout=30.0, rate_limit=100_000.0)


def httpcore_pool(settings: PollSettings) -> httpx.AsyncBaseTransport:
    """The transport the client had before: httpx's default, sized as it was."""
    size = settings.page_concurrency
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    return httpx.AsyncHTTPTransport(limits=limits)


TRANSPORTS: dict[str, Callable[[PollSettings], httpx.AsyncBaseTransport | None]] = {
    "httpcore": httpcore_pool,
    "aiohttp": lambda settings: None,  # the client's own choice
}


async def cpu_per_request(url: str, transport: str, in_flight: int, requests: int) -> float:
    """CPU seconds per request of ``requests`` page requests kept ``in_flight`` at once."""
    settings = dataclasses.replace(SETTINGS, page_concurrency=in_flight)
    client = RunningJobsClient(
        make_target(url), settings, transport=TRANSPORTS[transport](settings)
    )
    window = poll_window(time.time(), settings.window)
    queue = iter(range(requests))

    async def worker(pages: int) -> None:
        for n in queue:
            await client.fetch_page(window, 1 + n % pages)

    try:
        first = await client.fetch_page(window, 1)
        pages = max(1, first.total_count // 20)
        cpu = time.process_time()
        await asyncio.gather(*(worker(pages) for _ in range(in_flight)))
        return (time.process_time() - cpu) / requests
    finally:
        await client.aclose()


async def cpu_per_10k_jobs(url: str, transport: str) -> float:
    """CPU seconds per 10 000 jobs of a first poll's read of the whole window."""
    client = RunningJobsClient(
        make_target(url), SETTINGS, transport=TRANSPORTS[transport](SETTINGS)
    )
    window: TimeSlice = poll_window(time.time(), SETTINGS.window)
    reader = WindowReader(
        client.fetch_page_with_retries,
        concurrency=SETTINGS.page_concurrency,
        request_cap=request_cap(SETTINGS),
    )
    try:
        cpu = time.process_time()
        read = await reader.read(window, [window])
        jobs = sum(1 for _ in read.jobs())
        return (time.process_time() - cpu) / max(1, jobs) * 10_000
    finally:
        await client.aclose()


async def main(quick: bool) -> None:
    requests = 600 if quick else 3000
    jobs = 10_000 if quick else 20_000
    print(f"transport, measured {date.today()}, {LATENCY * 1000:.0f} ms answers, {requests} "
          f"requests per measure, {jobs} jobs per read")  # fmt: skip
    steady = ("--finish-rate", "0", "--submit-rate", "0", "--latency", repr(LATENCY))
    with simulator_with("--running", str(jobs), *steady) as url:
        per_request: dict[tuple[str, int], float] = {}
        per_jobs: dict[str, float] = {}
        for transport in TRANSPORTS:  # alternated, so load on the machine falls on both
            for in_flight in (4, 32):
                per_request[transport, in_flight] = await cpu_per_request(
                    url, transport, in_flight, requests
                )
            per_jobs[transport] = await cpu_per_10k_jobs(url, transport)
    for transport in TRANSPORTS:
        figure(f"{transport}: CPU ms per request, 4 in flight",
               per_request[transport, 4] * 1000, "-", unit="ms")  # fmt: skip
        figure(f"{transport}: CPU per request, 32 in flight / 4 in flight",
               per_request[transport, 32] / per_request[transport, 4],
               "<= 1.2" if transport == "aiohttp" else "-")  # fmt: skip
    for in_flight in (4, 32):
        ratio = per_request["aiohttp", in_flight] / per_request["httpcore", in_flight]
        figure(f"CPU per request, aiohttp / httpcore, {in_flight} in flight", ratio, "-")
    for transport in TRANSPORTS:
        figure(f"{transport}: CPU s per 10 000 jobs read", per_jobs[transport], "-", unit="s")
    figure("CPU per 10 000 jobs read, aiohttp / httpcore",
           per_jobs["aiohttp"] / per_jobs["httpcore"], "-")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, 10 000 jobs")
    asyncio.run(main(parser.parse_args().quick))
