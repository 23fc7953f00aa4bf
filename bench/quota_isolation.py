"""The jobs poll beside a quota API in trouble: its time with GetQuotaUsage hung, throttled and
healthy, against the quota poll off, in one run.

Paired, so that a loaded machine moves both sides: one exporter (in process) polls two targets,
each against its own simulator on loopback (threads of this process) serving the same 2 000
running jobs, every answer ``LATENCY`` late. Target "trouble" has 24 quotas whose GetQuotaUsage
hangs, always answers 429, or answers; target "off" has no quota API (ListQuotas answers 404 at
once, so its usage is never asked: the quota poll as good as off). After ListQuotas, a usage
round of "trouble" starts, and the two targets' jobs polls alternate (each first every other
turn), 10 each. The figure
is the median of "trouble"'s planned jobs polls (the 2nd onwards) over "off"'s (target <= 1.1x),
in wall time and in this process's CPU time.

Run: ``.venv/bin/python bench/quota_isolation.py`` (about 2 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace

from common import figure

from exporter.config import Config, Credentials, Target
from exporter.demo.simulator import ApiSimulator
from exporter.demo.simulator_state import Faults
from exporter.wiring import Exporter
from tests.support.quota_isolation import (
    CATALOG,
    KEY_ID,
    QUOTA_SETTINGS,
    SECRET,
    SETTINGS,
    running_jobs,
)

LATENCY = 0.010
SCENARIOS = {"usage hung": "hang", "usage throttled": "throttle", "usage healthy": ""}


def target(url: str, account: str) -> Target:
    return Target(
        region="cn-hangzhou",
        endpoint=url,
        credentials=Credentials(KEY_ID, SECRET),
        labels=(("account", account),),
    )


async def alternate(exporter: Exporter, polls: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each target's jobs polls, alternating, beside one usage round."""
    trouble, off = exporter.quota_pollers
    await asyncio.gather(trouble.poll_quotas(), off.poll_quotas())
    usage = asyncio.gather(trouble.poll_usage(), off.poll_usage())
    await asyncio.sleep(0.5)  # the round's first requests are out (hung, or cutting the rate)
    times: dict[str, list[tuple[float, float]]] = {"trouble": [], "off": []}
    pairs = list(zip(("trouble", "off"), exporter.pollers, strict=True))
    for turn in range(polls):
        # Each goes first every other turn: what the first of two polls meets (a collection
        # of garbage, the other's leftovers) falls on both alike.
        for name, poller in pairs if turn % 2 == 0 else pairs[::-1]:
            wall, cpu = time.monotonic(), time.process_time()
            assert await poller.poll(), f"{name}: a jobs poll failed"
            times[name].append((time.monotonic() - wall, time.process_time() - cpu))
    await usage
    return times


def scenario(fault: str, jobs: int, polls: int) -> dict[str, list[tuple[float, float]]]:
    now = int(time.time())
    records = running_jobs(jobs, now)
    credentials = {KEY_ID: (SECRET, None)}
    faults = Faults(latency=LATENCY)
    quotas = replace(CATALOG, usage_fault=fault)
    trouble = ApiSimulator(records, credentials=credentials, quotas=quotas, faults=faults).start()
    off = ApiSimulator(records, credentials=credentials, faults=faults).start()
    config = Config(
        targets=(target(trouble.url, "trouble"), target(off.url, "off")),
        poll=SETTINGS,
        quota_poll=QUOTA_SETTINGS,
    )
    exporter = Exporter(config)

    async def run() -> dict[str, list[tuple[float, float]]]:
        try:
            return await alternate(exporter, polls)
        finally:
            await exporter.aclose()

    try:
        return asyncio.run(run())
    finally:
        trouble.stop()
        off.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 polls a target instead of 10")
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    polls = 4 if args.quick else 10
    print(f"jobs polls of {args.jobs} jobs, {LATENCY * 1000:g} ms per answer, {polls} a target")
    for name, fault in SCENARIOS.items():
        times = scenario(fault, args.jobs, polls)
        trouble, off = times["trouble"][1:], times["off"][1:]
        wall = statistics.median(t[0] for t in trouble) / statistics.median(t[0] for t in off)
        cpu = statistics.median(t[1] for t in trouble) / statistics.median(t[1] for t in off)
        baseline = statistics.median(t[0] for t in off)
        print(f"  quota poll off: median planned jobs poll {baseline:.3f} s")
        figure(f"jobs poll time, {name} / quota poll off", wall, "<= 1.1")
        figure(f"process CPU per jobs poll, {name} / quota poll off", cpu, "<= 1.1")


if __name__ == "__main__":
    main()
