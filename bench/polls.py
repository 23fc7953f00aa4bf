"""Polls of a busy tenant: requests and time per poll against a running list that moves, and the
request rate learned under a service-side limit.

Every figure is a ratio against a baseline measured in the same run:

- requests per poll / ceil(N / 20)                                   (steady <= 1.1, churn <= 1.5)
- poll time / the API bound for those requests, ceil(requests / page_concurrency) x latency (<= 1.3)
- poll time / a sequential walk of the pages, as the official SDK pages (<= 0.3 at 4 000 jobs)
- learned rate / the simulator's limit (>= 0.8), throttled requests / all requests (< 5 %)

The simulator runs in this process (its churn is an object the figures count against); its
work per request is small beside the latency it sleeps.

Run: ``.venv/bin/python bench/polls.py`` (about 5 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from datetime import date

from common import CREDENTIALS, figure, make_target

from exporter.churn import Churn, ChurningJobs
from exporter.client import RunningJobsClient
from exporter.collector import ExporterMetrics
from exporter.config import PollSettings
from exporter.poller import TargetPoller, poll_window
from exporter.simulator import ApiSimulator, Faults
from exporter.snapshot import SnapshotStore

KEY = CREDENTIALS
LATENCY = 0.040
DEFAULTS = PollSettings(interval=60.0)


def poller_for(url: str, settings: PollSettings) -> tuple[TargetPoller, SnapshotStore]:
    target = make_target(url)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), settings.interval, process_metrics=False)
    return TargetPoller(target, settings, store, metrics), store


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


async def polls(jobs: int, churn: float, rounds: int, gap: float) -> list[dict]:
    """``rounds`` polls of a tenant with ``jobs`` running, ``churn`` finishing and submitted/s."""
    work = ChurningJobs(jobs, Churn(churn, churn), start=time.time(), seed=jobs)
    sim = ApiSimulator(
        work,
        credentials={KEY.access_key_id: (KEY.access_key_secret, None)},
        faults=Faults(latency=LATENCY),
    ).start()
    poller, _ = poller_for(sim.url, DEFAULTS)
    results = []
    try:
        for _ in range(rounds):
            before = sim.state.requests
            started = time.monotonic()
            ok = await poller.poll()
            seconds = time.monotonic() - started
            requests = sim.state.requests - before
            pages = math.ceil(len(work.ids()) / 20)
            results.append(
                {
                    "ok": ok,
                    "requests_ratio": requests / pages,
                    "bound_ratio": seconds
                    / (math.ceil(requests / DEFAULTS.page_concurrency) * LATENCY),
                    "seconds": seconds,
                }
            )
            await asyncio.sleep(gap)
    finally:
        await poller.aclose()
        sim.stop()
    return results


async def learned_rate(limit: float, duration: float) -> dict:
    work = ChurningJobs(2000, Churn(), start=time.time())
    sim = ApiSimulator(
        work, credentials={KEY.access_key_id: (KEY.access_key_secret, None)}, rate_limit=limit
    ).start()
    settings = PollSettings(interval=10.0, retry_backoff=0.1)
    poller, _ = poller_for(sim.url, settings)
    rates, good = [], 0
    until = time.monotonic() + duration
    try:
        while time.monotonic() < until:
            good += await poller.poll()
            rates.append(poller._client.rate.rate)
    finally:
        await poller.aclose()
        sim.stop()
    settled = rates[len(rates) // 2 :]
    return {
        "polls": len(rates),
        "good_polls": good,
        "learned_over_limit": sum(settled) / len(settled) / limit,
        "throttled_share": sim.state.throttled / max(1, sim.state.requests),
    }


async def main(quick: bool) -> None:
    print(
        f"busy tenants, measured {date.today()}, simulator latency {LATENCY * 1000:.0f} ms, "
        f"default settings (page_concurrency {DEFAULTS.page_concurrency})"
    )
    sizes = [2000] if quick else [2000, 20000]
    for jobs in sizes:
        for churn in (0.0, 5.0):
            rounds = await polls(jobs, churn, rounds=3 if quick else 4, gap=2.0)
            kind = "steady" if churn == 0 else f"churn {churn:g}+{churn:g}/s"
            later = rounds[1:]
            print(f"{jobs} jobs, {kind}: {sum(r['ok'] for r in rounds)}/{len(rounds)} polls good")
            figure("requests per poll / ceil(N/20), first poll", rounds[0]["requests_ratio"], "-")
            figure(
                "requests per poll / ceil(N/20), later polls (worst)",
                max(r["requests_ratio"] for r in later),
                "<= 1.1 steady, <= 1.5 churn",
            )
            figure(
                "poll time / API bound for its requests, first poll", rounds[0]["bound_ratio"], "-"
            )
            figure(
                "poll time / API bound for its requests, later polls (worst)",
                max(r["bound_ratio"] for r in later),
                "<= 1.3",
            )
    work_jobs = 4000
    rounds = await polls(work_jobs, 5.0, rounds=3, gap=2.0)
    work = ChurningJobs(work_jobs, Churn(), start=time.time())
    sim = ApiSimulator(
        work,
        credentials={KEY.access_key_id: (KEY.access_key_secret, None)},
        faults=Faults(latency=LATENCY),
    ).start()
    walk, pages = await sequential_walk(sim.url)
    sim.stop()
    print(
        f"{work_jobs} jobs, churn 5+5/s, against a sequential walk of {pages} pages ({walk:.1f} s)"
    )
    figure("first poll time / sequential walk", rounds[0]["seconds"] / walk, "<= 0.3")
    figure(
        "later poll time / sequential walk (worst)",
        max(r["seconds"] for r in rounds[1:]) / walk,
        "<= 0.3",
    )
    rate = await learned_rate(50.0, 30 if quick else 90)
    print(f"simulator limit 50/s: {rate['good_polls']}/{rate['polls']} polls good")
    figure(
        "learned rate / service limit (mean over the second half)",
        rate["learned_over_limit"],
        ">= 0.8",
    )
    share = rate["throttled_share"]
    figure("throttled requests / all requests", 100 * share, "< 5 %", unit="%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    asyncio.run(main(parser.parse_args().quick))
