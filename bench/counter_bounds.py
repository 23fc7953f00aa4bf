"""Jobs-over-time counters under quota names that change on every poll (issue 23, row 4).

The jobs-over-time step is fed directly (no HTTP): each poll 100 jobs, each in a quota no poll
named before, the last poll's jobs gone (finished). Against a baseline in the same run: the
same number of polls of 100 jobs in 100 quotas that never change. Figures: series served,
traced memory of the step, one collection's time, renamed over steady.

Before the bound (``CounterFold``), 1 000 polls held 3.6 M series, 553 MiB, 5.5 s a collection.

    python bench/counter_bounds.py            # 1 000 polls, about a minute
    python bench/counter_bounds.py --quick    # 200 polls
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from datetime import date

from common import figure, make_target

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.metrics.job_changes import JobChangeMetrics
from exporter.polling.derive.counter_fold import FoldLimits

T0 = 1_764_028_800
BUCKETS = (
    (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
     43200.0, 86400.0),
    (10.0, 30.0, 60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0,
     86400.0),
)  # fmt: skip


def jobs_of(poll: int, renamed: bool) -> list[RunningJob]:
    at = T0 + 60 * poll
    name = f"r{poll}q" if renamed else "q"
    return [
        RunningJob(f"j{poll}-{k}", f"p{k % 7}", f"{name}{k}", 0.01, 0.01, 0.5, at - 30, at - 20)
        for k in range(100)
    ]


def run(polls: int, renamed: bool) -> dict:
    """Feed ``polls`` polls; the series served, traced bytes held, one collection's seconds."""
    target = make_target("http://127.0.0.1:9")
    gc.collect()
    tracemalloc.start()
    metrics = JobChangeMetrics((), 60.0, *BUCKETS, limits=FoldLimits())
    for poll in range(polls):
        at = T0 + 60 * poll
        metrics.poll_published(target, TimeSlice(at - 3600, at), jobs_of(poll, renamed))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    started = time.perf_counter()
    series = sum(len(family.samples) for family in metrics.collect())
    return {"series": series, "bytes": held, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    polls = 200 if parser.parse_args().quick else 1000
    print(f"# counter bounds, {date.today()}, {polls} polls of 100 jobs")
    steady, renamed = run(polls, renamed=False), run(polls, renamed=True)
    figure("series served, steady quotas", steady["series"], "-", "")
    figure("series served, renamed quotas", renamed["series"], "-", "")
    figure("series, renamed / steady", renamed["series"] / steady["series"], "<= 1.1x")
    figure("MiB held, renamed quotas", renamed["bytes"] / 2**20, "-", " MiB")
    figure("memory held, renamed / steady", renamed["bytes"] / steady["bytes"], "<= 2x")
    figure("collection seconds, renamed", renamed["seconds"], "-", " s")
    figure("collection time, renamed / steady", renamed["seconds"] / steady["seconds"], "<= 2x")


if __name__ == "__main__":
    main()
