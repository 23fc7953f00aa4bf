"""Jobs over time: the memory a tracked job costs, and the CPU the diff adds to a poll.

1. Memory: 10 000 jobs parsed from their JSON records, as a poll gets them; what the diff keeps
   of them between polls (``SeenJobs``: instance id, quota, project, two times), measured with
   tracemalloc after the parsed jobs are dropped, against the parsed jobs themselves (what a
   poll's read holds while it runs), in the same run.
2. Poll CPU: two pollers of the same churning tenant (10 000 jobs, 20 finishing and 20 submitted
   a second, simulator in a process of its own), one with ``metrics.job_changes`` off and one
   with it on, polled alternately; the process CPU time of each poll, on over off.

    python bench/job_changes.py            # about 1 minute
    python bench/job_changes.py --quick    # 2 000 jobs, fewer polls
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import date

from common import figure, job_records, simulator_with
from step_cost import PollerSide, alternating_cpu, traced_bytes

from exporter.api.wire.jobs import parse_job
from exporter.api.wire.pages import TimeSlice
from exporter.polling.derive.job_changes import SeenJobs


def parsed_jobs(count: int) -> list:
    now = int(time.time())
    records = json.loads(json.dumps(job_records(count, now)))  # fresh strings, as off the wire
    return [parse_job(record, now) for record in records]


def memory(count: int) -> dict:
    jobs, parsed = traced_bytes(lambda: parsed_jobs(count))
    del jobs
    window = TimeSlice(int(time.time()) - 86400, int(time.time()))
    seen, tracked = traced_bytes(lambda: SeenJobs.of(window, parsed_jobs(count)))
    assert len(seen.jobs) == count
    return {"parsed": parsed, "tracked": tracked}


async def poll_cpu(url: str, polls: int, gap: float) -> dict:
    """The poll's CPU with and without jobs over time, and the jobs it tracks."""
    off, on = PollerSide(url, job_changes=False), PollerSide(url, job_changes=True)
    cpu = await alternating_cpu(off, on, polls, gap)
    changes = on.metrics.job_changes
    assert changes is not None
    return {**cpu, "tracked": changes.tracked_jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    jobs, polls, gap = (2_000, 6, 0.5) if args.quick else (10_000, 16, 1.0)
    print(f"# jobs over time, {date.today()}, {jobs} jobs")
    found = memory(jobs)
    print(f"memory, {jobs} jobs")
    figure("bytes per tracked job", found["tracked"] / jobs, "-", " B")
    figure(
        "tracked jobs / the same jobs as parsed by a poll", found["tracked"] / found["parsed"], "-"
    )
    figure("MiB per 10 000 tracked jobs", found["tracked"] / jobs * 10_000 / 2**20, "-", " MiB")
    rate = "20"
    with simulator_with(
        "--running", str(jobs), "--finish-rate", rate, "--submit-rate", rate
    ) as url:
        cpu = asyncio.run(poll_cpu(url, polls, gap))
    print(
        f"poll CPU, {jobs} jobs churning, median of {polls} polls each "
        f"({cpu['tracked']} tracked, {cpu['failed']} failed polls not timed)"
    )
    figure("CPU seconds per poll, job_changes off", cpu["off"], "-", " s")
    figure("CPU per poll, job_changes on / off", cpu["on"] / cpu["off"], "<= 1.1x")


if __name__ == "__main__":
    main()
