"""A poll's API answers leave no reference cycles behind.

An answer that stays in a cycle once read (httpx's response and its stream, aiohttp's answer
behind them) is freed only by the cyclic garbage collector; with a fleet, its full collections
of the whole heap stopped every thread, scrapes included, for 0.2-0.3 s about every second
(bench/README.md). Polled over real HTTP on loopback against the simulator.
"""

from __future__ import annotations

import asyncio
import gc
import time

from exporter.config import PollSettings
from exporter.demo.simulator import ApiSimulator
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from tests.support.jobs import TEST_CREDENTIALS, job_record, make_target


async def poll_twice(url: str) -> tuple[bool, int, list[object]]:
    """Two polls; what the second one left in cycles (the first sets up the client)."""
    target = make_target(url)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, process_metrics=False)
    settings = PollSettings(interval=60.0, window=3600.0, timeout=5.0)
    poller = TargetPoller(target, settings, store, metrics.polls)
    try:
        first = await poller.poll()
        gc.collect()
        gc.disable()
        try:
            second = await poller.poll()
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            garbage = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        requests = int(metrics_requests(metrics))
    finally:
        await poller.aclose()
    return first and second, requests, garbage


def metrics_requests(metrics: ExporterMetrics) -> float:
    return sum(
        sample.value
        for family in metrics.self_registry.collect()
        for sample in family.samples
        if sample.name == "maxcompute_exporter_api_requests_total"
    )


def test_a_polls_answers_are_freed_without_the_cyclic_collector() -> None:
    now = int(time.time())
    records = [job_record(f"job-{n:03d}", submitted=now - 600 + n) for n in range(100)]
    secret = TEST_CREDENTIALS.access_key_secret
    sim = ApiSimulator(records, credentials={TEST_CREDENTIALS.access_key_id: (secret, None)})
    sim.start()
    try:
        ok, requests, garbage = asyncio.run(poll_twice(sim.url))
    finally:
        sim.stop()
    assert ok
    assert requests >= 10  # 100 jobs: at least five pages a poll
    kinds = {f"{type(o).__module__}.{type(o).__qualname__}" for o in garbage}
    assert {"httpx.Response", "aiohttp.client_reqrep.ClientResponse"} & kinds == set()
