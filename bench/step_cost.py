"""What a step of the poll's flow costs: the bytes what it builds holds; the CPU of one poller
with the step against one without, polled in turn.

Shared by ``consumption.py`` and ``job_changes.py``: each builds the two sides its own way (the
step on or off) and reads the median CPU of a good poll, and a scrape after it, on each.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from common import bench_settings, make_target

from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller


def traced_bytes(build: Callable[[], object]) -> tuple[object, int]:
    """What ``build()`` returns, and the bytes it still holds once its temporaries are gone."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return kept, after - before


class PollerSide:
    """One poller of the tenant, its CPU per good poll timed; ``metrics_options`` go to its
    ``ExporterMetrics`` (e.g. ``job_changes=False``)."""

    def __init__(self, url: str, **metrics_options: Any) -> None:
        self.target = make_target(url)
        settings = bench_settings()
        self.store = SnapshotStore((self.target,))
        self.metrics = ExporterMetrics(
            self.store, (self.target,), (), settings.interval, process_metrics=False,
            **metrics_options,
        )  # fmt: skip
        self.renderer = MetricsRenderer(self.store, self.metrics)
        self.poller = TargetPoller(self.target, settings, self.store, self.metrics.polls)
        self.cpu: list[float] = []
        self.failed = 0

    async def poll(self) -> None:
        started = time.process_time()
        if not await self.poller.poll():
            # The list moved too much under the read (it is read again next time): not timed.
            self.failed += 1
            return
        self.renderer.render()  # a scrape after each poll: the rendering is part of the cost
        self.cpu.append(time.process_time() - started)


async def alternating_cpu(off: PollerSide, on: PollerSide, polls: int, gap: float) -> dict:
    """``polls`` + 1 polls of each side, in turn (which goes first alternates), ``gap`` apart:
    the median CPU of each side's good polls but the first, and the polls that failed."""
    try:
        for number in range(polls + 1):
            for side in (off, on) if number % 2 else (on, off):
                await side.poll()
            await asyncio.sleep(gap)
    finally:
        await off.poller.aclose()
        await on.poller.aclose()
    # The first poll of each has no plan and no baseline: left out of the median.
    return {
        "off": statistics.median(off.cpu[1:]),
        "on": statistics.median(on.cpu[1:]),
        "failed": off.failed + on.failed,
    }
