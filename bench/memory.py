"""Memory of polling: peak RSS after 100 polls of 20 000 jobs against after 1, and the RSS a poll
adds when the API claims a totalCount of 10^9.

1. The poll loop runs in a child process of its own (one exporter's poller, and a render of
   ``/metrics`` after every poll, as a scrape would); the simulator in another. Peak RSS
   (VmHWM) is read after poll 1, 2, 5, 10, ..., N. Target: after N polls <= 1.1x after 1.
2. A poller whose every answer says ``totalCount`` 10^9 (20 jobs a page, no network: an
   in-process transport): the poll must fail at once as ``too_many_jobs`` and grow RSS by less
   than 50 MiB.

    python bench/memory.py            # 100 polls of 20 000 jobs, about 2 minutes
    python bench/memory.py --quick    # 10 polls of 2 000 jobs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from common import MiB, bench_settings, figure, make_target, proc_status, receive, simulator_process

from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller


def checkpoints(polls: int) -> list[int]:
    """Poll numbers after which peak RSS is recorded: 1, 2, 5, 10, 20, 50, 100, ..., polls."""
    marks = {1, polls}
    step = 1
    while step < polls:
        marks.update(m * step for m in (1, 2, 5) if m * step < polls)
        step *= 10
    return sorted(marks)


def poll_loop(endpoint: str, jobs: int, polls: int, conn) -> None:
    """Child process: ``polls`` polls of the simulator, and a render after each one."""

    async def run() -> dict:
        target = make_target(endpoint)
        settings = bench_settings()
        store = SnapshotStore((target,))
        metrics = ExporterMetrics(store, (target,), (), settings.interval, process_metrics=False)
        renderer = MetricsRenderer(store, metrics)
        poller = TargetPoller(target, settings, store, metrics.polls)
        peaks = {}
        marks = set(checkpoints(polls))
        try:
            for number in range(1, polls + 1):
                ok = await poller.poll()
                snapshot = store.status(target).snapshot
                if not ok or snapshot is None or snapshot.jobs != jobs:
                    raise RuntimeError(f"poll {number} failed or incomplete")
                renderer.render()
                if number in marks:
                    peaks[number] = proc_status("VmHWM")
        finally:
            await poller.aclose()
        return peaks

    conn.send(asyncio.run(run()))


def peak_rss(jobs: int, polls: int, latency: float) -> dict[int, int]:
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory() as workdir,
        simulator_process(jobs, latency, Path(workdir)) as endpoint,
    ):
        parent, child = context.Pipe()
        process = context.Process(target=poll_loop, args=(endpoint, jobs, polls, child))
        process.start()
        try:
            return receive(parent, process, 3600)
        finally:
            process.join(10)


async def huge_total() -> tuple[bool, float, float, str]:
    """One poll against answers of totalCount 10^9; (ok, seconds, RSS growth, reason)."""
    now = int(time.time())

    def answer(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["from"])
        jobs = [
            {
                "instanceId": f"x{n}",
                "jobOwner": "o",
                "project": "p",
                "quotaNickname": "q",
                "cuSnapshot": 0.1,
                "memorySnapshot": 0.1,
                "progress": 0.5,
                "submittedAtTime": start,
                "runningAtTime": now,
            }
            for n in range(20)
        ]
        body = {
            "requestId": "r",
            "httpCode": 200,
            "errorCode": "success",
            "data": {"runningJobInfoList": jobs, "totalCount": 10**9},
        }
        return httpx.Response(200, content=json.dumps(body).encode())

    target = make_target("https://maxcompute.cn-hangzhou.aliyuncs.com")
    settings = bench_settings(interval=60.0)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, process_metrics=False)
    poller = TargetPoller(target, settings, store, metrics.polls)
    poller._client._http._transport = httpx.MockTransport(answer)
    before = proc_status("VmRSS")
    started = time.monotonic()
    ok = await poller.poll()
    seconds = time.monotonic() - started
    await poller.aclose()
    reasons = [
        sample.labels["reason"]
        for family in metrics.self_registry.collect()
        for sample in family.samples
        if sample.name == "maxcompute_exporter_poll_errors_total" and sample.value
    ]
    return ok, seconds, (proc_status("VmRSS") - before) / MiB, ",".join(reasons)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 polls of 2 000 jobs")
    parser.add_argument("--latency", type=float, default=0.001, help="API latency, seconds")
    args = parser.parse_args()
    jobs, polls = (2000, 10) if args.quick else (20000, 100)
    print(
        f"memory, measured {date.today()}: {polls} polls of {jobs} jobs, "
        f"simulator latency {args.latency * 1000:g} ms"
    )
    peaks = peak_rss(jobs, polls, args.latency)
    trajectory = ", ".join(f"{k}: {v / MiB:.1f}" for k, v in sorted(peaks.items()))
    print(f"  peak RSS (MiB) after poll {trajectory}")
    figure(f"peak RSS after {polls} polls / after 1", peaks[polls] / peaks[1], "<= 1.1")
    ok, seconds, growth, reason = asyncio.run(huge_total())
    print(
        f"totalCount 10^9: the poll {'succeeded' if ok else 'failed'} ({reason}) in {seconds:.3f} s"
    )
    figure("RSS growth of that poll", growth, "< 50 MiB", unit="M")


if __name__ == "__main__":
    main()
