"""Consumption: the memory a tracked job costs, and the CPU the integration adds to a poll.

1. Memory: 10 000 jobs parsed from their JSON records, as a poll gets them; what the
   consumption step keeps of them between polls (``SharePoll``: instance id, quota, project,
   owner, two shares, the start), measured with tracemalloc after the parsed jobs are dropped,
   against the parsed jobs themselves, in the same run.
2. Step CPU: the same successive polls of a churning tenant (10 000 jobs, 1 % finishing and 1 %
   starting per poll, shares moving) handed to the consumption step and to the jobs-over-time
   step, and aggregated as a poll does, in the same run; each step's process CPU time per poll
   against the poll's own aggregation.
3. Poll CPU: two pollers of the same churning tenant (10 000 jobs, 20 finishing and 20 submitted
   a second, simulator in a process of its own), one with the consumption step and one
   without, polled alternately, a scrape after each; the process CPU time of each poll, with
   over without (the figure that matters: what a poll costs in all).

    python bench/consumption.py            # about 1 minute
    python bench/consumption.py --quick    # 2 000 jobs, fewer polls
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import date

from common import figure, job_records, make_target, simulator_with
from step_cost import PollerSide, alternating_cpu, traced_bytes

from exporter.api.wire.jobs import RunningJob, parse_job
from exporter.api.wire.pages import TimeSlice
from exporter.metrics.consumption import ConsumptionMetrics
from exporter.metrics.job_changes import JobChangeMetrics
from exporter.polling.derive.aggregation import aggregate
from exporter.polling.derive.consumption import SharePoll


def parsed_jobs(count: int, now: int) -> list[RunningJob]:
    records = json.loads(json.dumps(job_records(count, now)))  # fresh strings, as off the wire
    return [job for record in records if (job := parse_job(record, now)) is not None]


def memory(count: int) -> dict:
    now = int(time.time())
    jobs, parsed = traced_bytes(lambda: parsed_jobs(count, now))
    del jobs
    poll, kept = traced_bytes(lambda: SharePoll.of(now, parsed_jobs(count, now)))
    assert len(poll.jobs) == count
    return {"parsed": parsed, "kept": kept}


def polls(count: int, number: int) -> list[tuple[int, list[RunningJob]]]:
    """``number`` successive polls, 60 s apart: 1 % of the jobs replaced, every share moved."""
    rng = random.Random(26)
    now = int(time.time()) - 60 * number
    jobs = parsed_jobs(count, now)
    sequence, serial = [], 0
    for step in range(number):
        at = now + 60 * step
        for _ in range(count // 100):
            serial += 1
            victim = rng.randrange(len(jobs))
            jobs[victim] = dataclasses.replace(
                jobs[victim], instance_id=f"new{serial:08d}", running_at=at - 30
            )
        jobs = [dataclasses.replace(j, cu_snapshot=rng.random() / 100) for j in jobs]
        sequence.append((at, jobs))
    return sequence


def cpu(count: int, number: int) -> dict:
    target = make_target("http://127.0.0.1:1")
    consumption = ConsumptionMetrics((), 60.0, owners=True)
    changes = JobChangeMetrics((), 60.0, (60.0,), (60.0,))
    times: dict[str, list[float]] = {"aggregate": [], "consumption": [], "job_changes": []}
    for at, jobs in polls(count, number):
        window = TimeSlice(at - 86400, at)
        steps: dict[str, Callable[[], object]] = {
            "aggregate": lambda jobs=jobs: aggregate(iter(jobs)),
            "consumption": lambda jobs=jobs, window=window: consumption.poll_published(
                target, window, iter(jobs)
            ),
            "job_changes": lambda jobs=jobs, window=window: changes.poll_published(
                target, window, iter(jobs)
            ),
        }
        for name, step in steps.items():
            started = time.process_time()
            step()
            times[name].append(time.process_time() - started)
    # The first poll is a baseline for both steps: left out of the median.
    return {name: statistics.median(values[1:]) for name, values in times.items()}


async def poll_cpu(url: str, polls: int, gap: float) -> dict:
    """The poll's CPU with and without the consumption step."""
    off, on = PollerSide(url), PollerSide(url)
    off.metrics.polls.consumption = None
    return await alternating_cpu(off, on, polls, gap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    jobs, number = (2_000, 6) if args.quick else (10_000, 16)
    print(f"# consumption, {date.today()}, {jobs} jobs")
    found = memory(jobs)
    figure("bytes per tracked job", found["kept"] / jobs, "-", " B")
    figure("kept jobs / the same jobs as parsed by a poll", found["kept"] / found["parsed"], "-")
    seconds = cpu(jobs, number)
    print(f"CPU per poll, median of {number - 1} polls after the baseline")
    figure("aggregation CPU seconds per poll", seconds["aggregate"], "-", " s")
    figure(
        "consumption step / the poll's aggregation",
        seconds["consumption"] / seconds["aggregate"],
        "-",
    )
    figure(
        "jobs-over-time step / the poll's aggregation",
        seconds["job_changes"] / seconds["aggregate"],
        "-",
    )
    gap = 0.5 if args.quick else 1.0
    churn = ("--running", str(jobs), "--finish-rate", "20", "--submit-rate", "20")
    with simulator_with(*churn) as url:
        whole = asyncio.run(poll_cpu(url, number, gap))
    print(f"poll CPU, {jobs} jobs churning, median of {number} polls each")
    print(f"  ({whole['failed']} failed polls not timed)")
    figure("CPU seconds per poll, without the consumption step", whole["off"], "-", " s")
    figure(
        "CPU per poll, with / without the consumption step", whole["on"] / whole["off"], "<= 1.1x"
    )


if __name__ == "__main__":
    main()
