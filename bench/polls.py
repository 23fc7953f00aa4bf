"""Polls of a busy tenant: requests and time per poll against a running list that moves, and the
request rate learned under a service-side limit.

Every figure is a ratio against a baseline measured in the same run:

- requests per poll / ceil(N / 20)                                  (steady <= 1.1, churn <= 1.5)
- poll time / the API bound for those requests, ceil(requests / page_concurrency) x latency
                                                                      (<= 1.3 after the first poll)
- poll time / a sequential walk of the pages, as the official SDK pages (<= 0.3 at 4 000 jobs)
- learned rate / the simulator's limit (>= 0.8), throttled requests / all requests (< 5 %)

The simulator runs in a process of its own (``python -m exporter.demo --running N``);
N is the job count each poll published.

Run: ``.venv/bin/python bench/polls.py`` (about 5 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from datetime import date

from common import figure, make_target, simulator_with

from exporter.api.transport.client import RunningJobsClient
from exporter.config import PollSettings
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller, poll_window

LATENCY = 0.040
DEFAULTS = PollSettings(interval=60.0)


class Stack:
    """One target's poller, store and metrics against ``url``; counts what it sent."""

    def __init__(self, url: str, settings: PollSettings) -> None:
        self.target = make_target(url)
        self.store = SnapshotStore((self.target,))
        self.metrics = ExporterMetrics(
            self.store, (self.target,), (), settings.interval, process_metrics=False
        )
        self.poller = TargetPoller(self.target, settings, self.store, self.metrics.polls)

    def counter(self, name: str, **labels: str) -> float:
        return sum(
            sample.value
            for family in self.metrics.self_registry.collect()
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def requests(self) -> float:
        return self.counter("maxcompute_exporter_api_requests_total")


async def sequential_walk(url: str) -> tuple[float, int]:
    """Every page of the window one after another, as the official SDK walks them."""
    client = RunningJobsClient(make_target(url), DEFAULTS)
    window = poll_window(time.time(), DEFAULTS.window)
    started = time.monotonic()
    try:
        first = await client.fetch_page(window, 1)
        pages = max(1, math.ceil(first.total_count / 20))
        for number in range(2, pages + 1):
            await client.fetch_page(window, number)
    finally:
        await client.aclose()
    return time.monotonic() - started, pages


async def polls(url: str, rounds: int, gap: float) -> list[dict]:
    """``rounds`` polls with the default settings, ``gap`` seconds apart."""
    stack = Stack(url, DEFAULTS)
    results = []
    try:
        for _ in range(rounds):
            before = stack.requests()
            started = time.monotonic()
            ok = await stack.poller.poll()
            seconds = time.monotonic() - started
            requests = stack.requests() - before
            snapshot = stack.store.status(stack.target).snapshot
            jobs = snapshot.jobs if snapshot else 0
            rounds_needed = math.ceil(requests / DEFAULTS.page_concurrency)
            results.append(
                {
                    "ok": ok,
                    "requests_ratio": requests / max(1, math.ceil(jobs / 20)),
                    "bound_ratio": seconds / (rounds_needed * LATENCY),
                    "seconds": seconds,
                }
            )
            await asyncio.sleep(gap)
    finally:
        await stack.poller.aclose()
    return results


def churning(jobs: int, churn: float, *extra: str):
    rate = repr(churn)
    return simulator_with(
        "--running", str(jobs), "--finish-rate", rate, "--submit-rate", rate,
        "--latency", repr(LATENCY), *extra,
    )  # fmt: skip


async def learned_rate(limit: float, duration: float) -> dict:
    settings = PollSettings(interval=10.0, retry_backoff=0.1)
    with simulator_with("--running", "2000", "--finish-rate", "0", "--submit-rate", "0",
                        "--rate-limit", repr(limit)) as url:  # fmt: skip
        stack = Stack(url, settings)
        rates, good = [], 0
        until = time.monotonic() + duration
        try:
            while time.monotonic() < until:
                good += await stack.poller.poll()
                rates.append(stack.counter("maxcompute_exporter_request_rate"))
        finally:
            await stack.poller.aclose()
    settled = rates[len(rates) // 2 :]
    throttled = stack.counter("maxcompute_exporter_api_requests_total", code="429")
    return {
        "polls": len(rates),
        "good_polls": good,
        "learned_over_limit": sum(settled) / len(settled) / limit,
        "throttled_share": throttled / max(1.0, stack.requests()),
    }


def report(jobs: int, kind: str, rounds: list[dict]) -> None:
    later = rounds[1:]
    print(f"{jobs} jobs, {kind}: {sum(r['ok'] for r in rounds)}/{len(rounds)} polls good")
    figure("requests per poll / ceil(N/20), first poll", rounds[0]["requests_ratio"], "-")
    figure(
        "requests per poll / ceil(N/20), later polls (worst)",
        max(r["requests_ratio"] for r in later),
        "<= 1.1 steady, <= 1.5 churn",
    )
    figure("poll time / API bound for its requests, first poll", rounds[0]["bound_ratio"], "-")
    figure(
        "poll time / API bound for its requests, later polls (worst)",
        max(r["bound_ratio"] for r in later),
        "<= 1.3",
    )


async def main(quick: bool) -> None:
    print(f"polls, measured {date.today()}, simulator latency {LATENCY * 1000:.0f} ms, "
          f"default settings (page_concurrency {DEFAULTS.page_concurrency})")  # fmt: skip
    for jobs in [2000] if quick else [2000, 20000]:
        for churn in (0.0, 5.0):
            with churning(jobs, churn) as url:
                rounds = await polls(url, rounds=3 if quick else 4, gap=2.0)
            report(jobs, "steady" if churn == 0 else f"churn {churn:g}+{churn:g}/s", rounds)
    with churning(4000, 5.0) as url:
        rounds = await polls(url, rounds=3, gap=2.0)
        walk, pages = await sequential_walk(url)
    print(f"4000 jobs, churn 5+5/s, against a sequential walk of {pages} pages ({walk:.1f} s)")
    figure("first poll time / sequential walk", rounds[0]["seconds"] / walk, "<= 0.3")
    figure("later poll time / sequential walk (worst)",
           max(r["seconds"] for r in rounds[1:]) / walk, "<= 0.3")  # fmt: skip
    rate = await learned_rate(50.0, 30 if quick else 90)
    print(f"simulator limit 50/s: {rate['good_polls']}/{rate['polls']} polls good")
    figure("learned rate / service limit (mean over the second half)",
           rate["learned_over_limit"], ">= 0.8")  # fmt: skip
    figure("throttled requests / all requests", 100 * rate["throttled_share"], "< 5 %", unit="%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    asyncio.run(main(parser.parse_args().quick))
