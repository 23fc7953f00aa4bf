"""Peak hour: a tenant of 30 000 running jobs under a service limit, a scheduler's burst of
2 000 jobs in one second, and what a poll costs the exporter per 10 000 jobs.

Every figure is a ratio against a baseline measured in the same run:

- 30 000 jobs, 60 changes a second (30 finishing, 30 submitted), 30 ms and 100 ms per answer,
  the simulator answering ``Throttling.User`` above 200 requests/s, default settings:
  later poll time / the API bound, requests / 200 per second                       (<= 1.2)
  requests per poll / ceil(N / 20)                                                  (<= 1.2)
  first poll time / the 60 s interval                                               (<= 1.0)
- 10 000 jobs of which 2 000 share one second, ~20 changes a second (inside the burst too):
  requests per poll / ceil(N / 20), and the jobs read both ways (approximate) per poll
- exporter CPU seconds and peak traced memory per 10 000 jobs, against the same figures of a
  steady 2 000-job tenant: no per-request work grows with the window's size     (<= 1.2)
- 50 000 jobs of which 5 000 share one second, 30+30 changes a second, 30 % of submissions
  starting late, 30 ms and 100 ms per answer, both orders, the same service limit (``--dense``):
  polls good / polls                                                               (= 1.0)
  first poll time / the 60 s interval                                              (<= 1.0)
  later poll time / the API bound                                                  (<= 1.2)
  requests per poll / ceil(N / 20), later polls                                    (<= 1.3)

The simulator runs in a process of its own; the poller in this one, so ``time.process_time``
is the exporter's CPU.

Run: ``.venv/bin/python bench/peak.py`` (about 5 minutes) or ``--quick`` (10 000 jobs);
``--large`` runs only the 30 000-job rows (about 1.5 minutes a row); ``--dense`` only the
50 000-job rows (about 2 minutes a row), ``--latency 0.1 --order newest`` one of them
(``--latency`` picks the rows of ``--large`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
import tracemalloc
from datetime import date

from common import figure, simulator_with
from polls import Stack

from exporter.config import PollSettings

DEFAULTS = PollSettings(interval=60.0)
SERVICE_LIMIT = 200.0
# Jobs finishing and as many submitted a second on the large tenant: the 60 changes/s.
LARGE_CHANGES = 30


async def measured_polls(url: str, rounds: int) -> list[dict]:
    """``rounds`` polls at the default settings, 2 s apart, then one with memory traced."""
    stack = Stack(url, DEFAULTS)
    results = []
    try:
        for index in range(rounds + 1):
            traced = index == rounds
            if traced:
                tracemalloc.start()
            throttled = stack.counter("maxcompute_exporter_api_requests_total", code="429")
            before, cpu, started = stack.requests(), time.process_time(), time.monotonic()
            ok = await stack.poller.poll()
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu
            peak = tracemalloc.get_traced_memory()[1] if traced else 0
            if traced:
                tracemalloc.stop()
            snapshot = stack.store.status(stack.target).snapshot
            results.append(
                {
                    "ok": ok,
                    "seconds": seconds,
                    "requests": stack.requests() - before,
                    "throttled": stack.counter("maxcompute_exporter_api_requests_total", code="429")
                    - throttled,
                    "jobs": snapshot.jobs if snapshot else 0,
                    "cpu": cpu,
                    "peak": peak,
                    "approximate": stack.counter("maxcompute_exporter_last_poll_approximate_jobs"),
                    "unseen": stack.counter("maxcompute_exporter_last_poll_unseen_jobs"),
                }
            )
            await asyncio.sleep(2.0)
    finally:
        await stack.poller.aclose()
    return results


def per_10k(rounds: list[dict], key: str) -> float:
    later = [r for r in rounds[1:-1] if r["jobs"] and r[key]] if key == "cpu" else rounds[-1:]
    return sum(r[key] / r["jobs"] * 10_000 for r in later) / max(1, len(later))


def per_request(rounds: list[dict]) -> float:
    later = rounds[1:-1]
    return sum(r["cpu"] for r in later) / max(1, sum(r["requests"] for r in later))


def later_poll_figures(later: list[dict], requests_target: str) -> None:
    """The later polls' worst time against the API bound and requests against ceil(N/20)."""
    figure(
        "later poll time / API bound (requests / service limit), worst",
        max(r["seconds"] / (r["requests"] / SERVICE_LIMIT) for r in later),
        "<= 1.2",
    )
    figure(
        "requests per poll / ceil(N/20), later polls, worst",
        max(r["requests"] / math.ceil(max(1, r["jobs"]) / 20) for r in later),
        requests_target,
    )


async def large_tenant(jobs: int, latency: float, rounds: int) -> list[dict]:
    with simulator_with(
        "--running",
        str(jobs),
        "--finish-rate",
        str(LARGE_CHANGES),
        "--submit-rate",
        str(LARGE_CHANGES),
        "--latency",
        repr(latency),
        "--rate-limit",
        repr(SERVICE_LIMIT),
    ) as url:
        results = await measured_polls(url, rounds)
    later = results[1:-1]  # not the last poll: tracing memory slows it
    good = sum(r["ok"] for r in results)
    print(
        f"{jobs} jobs, {LARGE_CHANGES}+{LARGE_CHANGES} changes/s, {latency * 1000:.0f} ms, "
        f"service limit {SERVICE_LIMIT:g}/s: {good}/{len(results)} polls good, requests "
        f"{[r['requests'] for r in results]}, seconds {[round(r['seconds'], 1) for r in results]}"
    )
    figure("first poll time / 60 s interval", results[0]["seconds"] / 60.0, "<= 1.0")
    later_poll_figures(later, requests_target="<= 1.2")
    figure(
        "throttled requests / all requests, later polls, worst",
        100 * max(r["throttled"] / max(1, r["requests"]) for r in later),
        "-",
        unit="%",
    )
    return results


async def burst(rounds: int) -> None:
    with simulator_with(
        "--running",
        "10000",
        "--burst",
        "2000",
        "--burst-owners",
        "40",
        "--queued-rate",
        "2",
        "--finish-rate",
        "9",
        "--submit-rate",
        "9",
        "--latency",
        "0.03",
        "--rate-limit",
        repr(SERVICE_LIMIT),
    ) as url:
        results = await measured_polls(url, rounds)
    good = sum(r["ok"] for r in results)
    print(f"10000 jobs, 2000 in one second, ~20 changes/s, 30 ms: {good}/{len(results)} good")
    figure(
        "requests per poll / ceil(N/20), first poll",
        results[0]["requests"] / math.ceil(max(1, results[0]["jobs"]) / 20),
        "-",
    )
    figure(
        "requests per poll / ceil(N/20), later polls, worst",
        max(r["requests"] / math.ceil(max(1, r["jobs"]) / 20) for r in results[1:-1]),
        "-",
    )
    figure(
        "jobs read both ways (approximate) / jobs, later polls, worst",
        max(r["approximate"] / max(1, r["jobs"]) for r in results[1:-1]),
        "-",
    )


async def dense_tenant(latency: float, descending: bool, rounds: int) -> list[dict]:
    """50 000 jobs, 5 000 in one second (40 owners in each of 3 quotas, a fifth of one robot),
    30+30 changes a second, 30 % of submissions starting late; the service's own limit."""
    order = ["--descending"] if descending else []
    with simulator_with(
        *("--running", "50000", "--burst", "5000", "--burst-owners", "40", "--late-starts", "0.3"),
        *("--finish-rate", "30", "--submit-rate", "30", "--latency", repr(latency)),
        *("--rate-limit", repr(SERVICE_LIMIT), *order),
    ) as url:
        results = await measured_polls(url, rounds)
    later = results[1:-1]
    good = sum(r["ok"] for r in results)
    print(
        f"50000 jobs, 5000 in one second, 30+30 changes/s, 30 % late starts, "
        f"{'newest' if descending else 'oldest'} first, {latency * 1000:.0f} ms: "
        f"{good}/{len(results)} polls good, requests {[r['requests'] for r in results]}, "
        f"seconds {[round(r['seconds'], 1) for r in results]}, "
        f"approximate {[r['approximate'] for r in results]}, "
        f"unseen {[r['unseen'] for r in results]}"
    )
    figure("polls good / polls", good / len(results), "= 1.0")
    figure("first poll time / 60 s interval", results[0]["seconds"] / 60.0, "<= 1.0")
    later_poll_figures(later, requests_target="<= 1.3")
    return results


async def dense_rows(latencies: list[float], orders: list[str], rounds: int) -> None:
    print(f"dense seconds, measured {date.today()}, default settings")
    for latency in latencies:
        for order in orders:
            await dense_tenant(latency, order == "newest", rounds)


async def large_rows(latencies: list[float], rounds: int) -> None:
    print(f"large tenant, measured {date.today()}, default settings")
    for latency in latencies:
        await large_tenant(30_000, latency, rounds + 1)


async def main(quick: bool) -> None:
    jobs = 10_000 if quick else 30_000
    rounds = 2 if quick else 3
    print(
        f"peak hour, measured {date.today()}, default settings "
        f"(page_concurrency {DEFAULTS.page_concurrency})"
    )
    with simulator_with(
        "--running",
        "2000",
        "--finish-rate",
        "0",
        "--submit-rate",
        "0",
        "--latency",
        "0.03",
        "--rate-limit",
        repr(SERVICE_LIMIT),
    ) as url:
        baseline = await measured_polls(url, rounds)
    large = [await large_tenant(jobs, latency, rounds) for latency in (0.03, 0.1)]
    print(f"cost of a poll: {jobs} jobs against a steady 2000-job tenant (same run)")
    for name, results in zip(("30 ms", "100 ms"), large, strict=True):
        figure(f"exporter CPU s per 10 000 jobs, {name}", per_10k(results, "cpu"), "-", unit="s")
        figure(
            f"  / the 2000-job tenant's, per request, {name}",
            per_request(results) / per_request(baseline),
            "<= 1.2",
        )
        figure(
            f"peak traced MiB per 10 000 jobs, {name}",
            per_10k(results, "peak") / 2**20,
            "-",
            unit="M",
        )
        figure(
            f"  / the 2000-job tenant's, per job, {name}",
            per_10k(results, "peak") / per_10k(baseline, "peak"),
            "<= 1.2",
        )
    await burst(rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 000 jobs, fewer polls")
    parser.add_argument("--dense", action="store_true", help="only the 50 000-job rows")
    parser.add_argument("--large", action="store_true", help="only the 30 000-job rows")
    parser.add_argument("--latency", type=float, action="append", help="0.03, 0.1 (default both)")
    parser.add_argument("--order", action="append", choices=("oldest", "newest"))
    parser.add_argument(
        "--rounds", type=int, default=2, help="with --dense or --large: polls after the first"
    )
    arguments = parser.parse_args()
    if arguments.large:
        asyncio.run(large_rows(arguments.latency or [0.03, 0.1], arguments.rounds))
    elif arguments.dense:
        latencies = arguments.latency or [0.03, 0.1]
        orders = arguments.order or ["oldest", "newest"]
        asyncio.run(dense_rows(latencies, orders, arguments.rounds))
    else:
        asyncio.run(main(arguments.quick))
