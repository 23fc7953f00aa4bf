"""``/metrics`` under concurrent scrapers, against prometheus-client's stock server.

The exporter's ``ExporterHTTPServer`` + ``MetricsRenderer`` and prometheus-client's
``start_http_server`` over the same collectors each serve 1 000 (quota, project) groups, filled
by one real poll of the simulator, from a child process of their own; keep-alive ``http.client``
scrapers (threads of this process) load them in a closed loop (saturated: latency is queueing)
and paced, as several Prometheus servers scraping at once do. Targets: throughput >= 5x the
stock server's with 8 scrapers; p99 <= 5 ms with 8 scrapers paced at 25/s each.

    python bench/scrapes.py            # 5 s per run, about 1 minute
    python bench/scrapes.py --quick    # 2 s per run
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import math
import multiprocessing
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from common import (
    PROJECTS,
    QUOTAS,
    bench_settings,
    figure,
    make_target,
    percentile,
    receive,
    simulator_process,
)

from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.rendering import MetricsRenderer
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller


class _Union:
    """One collector yielding every family of several registries (for the stock server)."""

    def __init__(self, *registries) -> None:
        self._registries = registries

    def collect(self):
        for registry in self._registries:
            yield from registry.collect()


def serve_metrics(kind: str, endpoint: str, groups: int, conn) -> None:
    """Child process: ``ours`` or ``stock`` serving /metrics on loopback until told to stop."""
    from prometheus_client import CollectorRegistry, start_http_server

    from exporter.web.server import ExporterHTTPServer

    target = make_target(endpoint)
    settings = bench_settings()
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), settings.interval, process_metrics=True)

    async def poll_once() -> None:
        poller = TargetPoller(target, settings, store, metrics.polls)
        try:
            if not await poller.poll():
                raise RuntimeError("the poll filling the store failed")
        finally:
            await poller.aclose()

    asyncio.run(poll_once())
    snapshot = store.status(target).snapshot
    if snapshot is None or len(snapshot.groups) != groups:
        raise RuntimeError(f"expected {groups} groups in the snapshot")
    if kind == "ours":
        server = ExporterHTTPServer(
            ("127.0.0.1", 0), MetricsRenderer(store, metrics), lambda: True, "/metrics"
        )
        server.serve_in_thread()
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            _Union(metrics.job_registry, metrics.counter_registry, metrics.self_registry)
        )
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    conn.send(server.server_address[1])
    while conn.recv() != "stop":
        pass
    server.shutdown()


@dataclass(frozen=True, slots=True)
class Run:
    kind: str
    encoding: str
    scrapers: int
    rate: float | None  # requests per second per scraper when paced; None: closed loop
    latencies: tuple[float, ...]
    errors: int
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p99(self) -> float:
        return percentile(list(self.latencies), 0.99)


def load(port: int, scrapers: int, seconds: float, encoding: str, rate: float | None):
    """``scrapers`` threads, each with its own keep-alive connection, for ``seconds``."""
    headers = {"Accept-Encoding": encoding}
    latencies: list[list[float]] = [[] for _ in range(scrapers)]
    errors = [0] * scrapers
    start = threading.Barrier(scrapers + 1)
    deadline = [math.inf]

    def scraper(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", "/metrics", headers=headers)  # connect and warm up
            connection.getresponse().read()
            start.wait()
            period = None if rate is None else 1.0 / rate
            due = deadline[0] - seconds + (0.0 if period is None else period * index / scrapers)
            while True:
                if period is not None:
                    due += period
                    time.sleep(max(0.0, due - time.perf_counter()))
                began = time.perf_counter()
                if began >= deadline[0]:
                    return
                connection.request("GET", "/metrics", headers=headers)
                response = connection.getresponse()
                response.read()
                latencies[index].append(time.perf_counter() - began)
                errors[index] += response.status != 200
        finally:
            connection.close()

    threads = [threading.Thread(target=scraper, args=(i,)) for i in range(scrapers)]
    for thread in threads:
        thread.start()
    began = time.perf_counter() + 0.05
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    flat = tuple(t for mine in latencies for t in mine)
    return flat, sum(errors), time.perf_counter() - began


def measure(kind: str, endpoint: str, plan, seconds: float) -> list[Run]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    groups = QUOTAS * PROJECTS
    process = context.Process(target=serve_metrics, args=(kind, endpoint, groups, child))
    process.start()
    runs = []
    try:
        port = receive(parent, process, 120)
        for encoding, scrapers, rate in plan:
            latencies, errors, elapsed = load(port, scrapers, seconds, encoding, rate)
            runs.append(Run(kind, encoding, scrapers, rate, latencies, errors, elapsed))
        parent.send("stop")
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per run")
    parser.add_argument("--scrapers", type=int, default=8)
    parser.add_argument("--paced-rate", type=float, default=25.0, help="per scraper, per second")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 5.0
    many, pace = args.scrapers, args.paced_rate
    plan = [
        (encoding, scrapers, rate)
        for encoding in ("identity", "gzip")
        for scrapers, rate in ((many, None), (many, pace))
    ]
    print(f"scrapes, measured {date.today()}: {QUOTAS * PROJECTS} groups, {os.cpu_count()} CPUs")
    with (
        tempfile.TemporaryDirectory() as workdir,
        simulator_process(2 * QUOTAS * PROJECTS, 0.0, Path(workdir)) as endpoint,
    ):
        runs = measure("ours", endpoint, plan, seconds)
        runs += measure("stock", endpoint, plan[::2], seconds)
    by_key = {(r.kind, r.encoding, r.scrapers, r.rate): r for r in runs}
    if any(r.errors for r in runs):
        print(f"  ERRORS: {sum(r.errors for r in runs)} scrapes answered other than 200")
    for encoding in ("identity", "gzip"):
        ours, stock = by_key["ours", encoding, many, None], by_key["stock", encoding, many, None]
        paced = by_key["ours", encoding, many, pace]
        figure(
            f"throughput ours / stock, {encoding}, {many} scrapers",
            ours.throughput / stock.throughput,
            ">= 5x",
        )
        figure(
            f"p99 ours, {encoding}, {many} scrapers paced at {pace:g}/s each",
            paced.p99 * 1000,
            "<= 5 ms",
            unit="ms",
        )
        figure(
            f"p99 ours, {encoding}, {many} scrapers closed loop (saturated)",
            ours.p99 * 1000,
            "-",
            unit="ms",
        )


if __name__ == "__main__":
    main()
