"""Busy tenants: requests and time per poll against a running list that moves, the request rate
learned under a service-side limit, and memory when the API claims 10^9 jobs.

Every figure is a ratio against a baseline measured in the same run:

- requests per poll / ceil(N / 20)                                   (steady <= 1.1, churn <= 1.5)
- poll time / the API bound for those requests, ceil(requests / page_concurrency) x latency (<= 1.3)
- poll time / a sequential walk of the pages, as the official SDK pages (<= 0.3 at 4 000 jobs)
- learned rate / the simulator's limit (>= 0.8), throttled requests / all requests (< 5 %)
- RSS growth while a poll meets totalCount 10^9 (< 50 MiB), and that it fails within its deadline

Run: ``.venv/bin/python bench/busy_tenant.py`` (about 5 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from datetime import date

import httpx

from exporter.api.client import RunningJobsClient
from exporter.config import Credentials, PollSettings, Target
from exporter.demo.churn import Churn, ChurningJobs
from exporter.demo.simulator import ApiSimulator, Faults
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.poller import TargetPoller, poll_window
from exporter.polling.snapshot import SnapshotStore

KEY = Credentials("LTAIbench", "bench-secret")
LATENCY = 0.040
DEFAULTS = PollSettings(interval=60.0)


def target_for(url: str) -> Target:
    return Target(region="cn-hangzhou", endpoint=url, credentials=KEY)


def poller_for(url: str, settings: PollSettings) -> tuple[TargetPoller, SnapshotStore]:
    target = target_for(url)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), settings.interval, process_metrics=False)
    return TargetPoller(target, settings, store, metrics.polls), store


async def sequential_walk(url: str) -> tuple[float, int]:
    """Every page of the window one after another, as the official SDK walks them."""
    client = RunningJobsClient(target_for(url), DEFAULTS)
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


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def huge_total() -> dict:
    """A hostile answer: totalCount 10^9 on every page."""
    record = {
        "instanceId": "x",
        "jobOwner": "o",
        "project": "p",
        "quotaNickname": "q",
        "cuSnapshot": 0.1,
        "memorySnapshot": 0.1,
        "progress": 0.5,
        "submittedAtTime": int(time.time()) - 60,
        "runningAtTime": int(time.time()) - 30,
    }

    def answer(request: httpx.Request) -> httpx.Response:
        jobs = [{**record, "instanceId": f"x{n}"} for n in range(20)]
        body = {
            "requestId": "r",
            "httpCode": 200,
            "errorCode": "success",
            "data": {"runningJobInfoList": jobs, "totalCount": 10**9},
        }
        return httpx.Response(200, content=json.dumps(body).encode())

    settings = PollSettings(interval=60.0)
    target = target_for("https://maxcompute.cn-hangzhou.aliyuncs.com")
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, process_metrics=False)
    poller = TargetPoller(target, settings, store, metrics.polls)
    poller._client._http._transport = httpx.MockTransport(answer)
    before = rss_bytes()
    started = time.monotonic()
    ok = await poller.poll()
    seconds = time.monotonic() - started
    await poller.aclose()
    return {
        "ok": ok,
        "seconds": seconds,
        "deadline": settings.effective_deadline,
        "rss_growth_mib": (rss_bytes() - before) / 2**20,
    }


def show(name: str, value: float, target: str) -> None:
    print(f"  {name:<62} {value:7.2f}x   target {target}")


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
            show("requests per poll / ceil(N/20), first poll", rounds[0]["requests_ratio"], "-")
            show(
                "requests per poll / ceil(N/20), later polls (worst)",
                max(r["requests_ratio"] for r in later),
                "<= 1.1 steady, <= 1.5 churn",
            )
            show(
                "poll time / API bound for its requests (worst)",
                max(r["bound_ratio"] for r in rounds),
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
    show("first poll time / sequential walk", rounds[0]["seconds"] / walk, "<= 0.3")
    show(
        "later poll time / sequential walk (worst)",
        max(r["seconds"] for r in rounds[1:]) / walk,
        "<= 0.3",
    )
    rate = await learned_rate(50.0, 30 if quick else 90)
    print(f"simulator limit 50/s: {rate['good_polls']}/{rate['polls']} polls good")
    show(
        "learned rate / service limit (mean over the second half)",
        rate["learned_over_limit"],
        ">= 0.8",
    )
    share = rate["throttled_share"]
    print(f"  {'throttled requests / all requests':<62} {share:7.1%}    target < 5 %")
    huge = await huge_total()
    print(
        f"totalCount 10^9: poll {'succeeded' if huge['ok'] else 'failed'} in "
        f"{huge['seconds']:.2f} s (deadline {huge['deadline']:g} s), RSS growth "
        f"{huge['rss_growth_mib']:.1f} MiB (target < 50 MiB)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    asyncio.run(main(parser.parse_args().quick))
