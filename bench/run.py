"""Performance benchmark of the exporter against its own API simulator, on loopback.

Run from the repository root::

    python bench/run.py            # full run, about 6-8 minutes on 2 cores
    python bench/run.py --quick    # small sizes, under a minute

Three figures, each a ratio measured in the same run (see bench/README.md):

1. poll wall time for 200 / 2 000 / 20 000 running jobs (``TargetPoller``, page_concurrency 4)
   against the bound ``ceil(N/20) / concurrency * latency`` and against the same client with
   page_concurrency 1 (pages one after another);
2. ``/metrics`` throughput and p99 with 1 000 (quota, project) groups under concurrent
   scrapers, ``ExporterHTTPServer`` + ``MetricsRenderer`` against prometheus-client's stock
   ``start_http_server`` serving the same collectors;
3. peak RSS of the exporter side after 100 polls of 20 000 jobs against after 1 poll.

The simulator always runs in its own process (``python -m exporter.demo.simulator``); the server
under test in part 2 and the poll loop in part 3 run in child processes of their own, so no
two measured parties share a GIL. It is a benchmark, not a test: it exits 0 whatever the
figures, and non-zero only if something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import inspect
import itertools
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `python bench/run.py` works without an installed package
    sys.path.insert(0, str(ROOT))

from exporter.api.wire import PAGE_SIZE  # noqa: E402
from exporter.config import (  # noqa: E402
    Credentials,
    PollSettings,
    Target,
)
from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET  # noqa: E402
from exporter.metrics.registries import ExporterMetrics  # noqa: E402
from exporter.metrics.rendering import MetricsRenderer  # noqa: E402
from exporter.polling.poller import TargetPoller  # noqa: E402
from exporter.polling.snapshot import SnapshotStore  # noqa: E402

QUOTAS = 50
PROJECTS = 20
WINDOW = 86400.0
CONCURRENCY = 4
# The highest poll.rate_limit the configuration accepts: in effect no client-side rate limit.
UNLIMITED_RATE = 10_000.0
MiB = 1024 * 1024


# --- workload -------------------------------------------------------------------------------


def job_records(count: int, now: int | None = None) -> list[dict]:
    """``count`` running jobs shaped like ``tests/conftest.py::job_record``.

    Spread round-robin over QUOTAS x PROJECTS groups (so 1 000 groups from 1 000 jobs up), all
    submitted within the last hour, i.e. well inside a 24 h poll window.
    """
    now = int(time.time()) if now is None else now
    records = []
    for n in range(count):
        group = n % (QUOTAS * PROJECTS)
        submitted = now - 3600 + (n * 3000) // max(count, 1)
        records.append(
            {
                "instanceId": f"20251125{n:08d}bench",
                "jobOwner": f"RAM$etl:robot{n % 7}",
                "project": f"project_{group // QUOTAS:02d}",
                "quotaNickname": f"quota_{group % QUOTAS:02d}",
                "cuSnapshot": round(0.001 + (n % 97) / 9700, 6),
                "memorySnapshot": round(0.0005 + (n % 89) / 8900, 6),
                "submittedAtTime": submitted,
                "runningAtTime": submitted + n % 300,
                "progress": 0.0 if n % 11 == 0 else round((n % 100) / 100, 2),
            }
        )
    return records


def make_target(endpoint: str) -> Target:
    return Target(
        region="cn-hangzhou",
        endpoint=endpoint,
        credentials=Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
    )


def poll_settings(concurrency: int, rate_limit: float | None = None) -> PollSettings:
    """The defaults, but a long interval (so the poll deadline never bites) and 24 h window."""
    overrides: dict = {"interval": 3600.0, "window": WINDOW, "page_concurrency": concurrency}
    overrides["timeout"] = 30.0
    if rate_limit is not None and "rate_limit" in {f.name for f in fields(PollSettings)}:
        overrides["rate_limit"] = rate_limit
    return replace(PollSettings(), **overrides)


def rate_label(rate_limit: float | None) -> str:
    if rate_limit is None:
        return f"default rate_limit {getattr(PollSettings(), 'rate_limit', 'none')}/s"
    return "no rate limit" if rate_limit >= UNLIMITED_RATE else f"rate_limit {rate_limit:g}/s"


# The project's simulator, with TCP_NODELAY on its sockets. Its handler (http.server) writes the
# headers and the body of a response in two send()s; with Nagle's algorithm on, the body waits
# for the client's delayed ACK of the headers, ~40 ms on Linux loopback, which would swamp the
# API latency this benchmark sets. The real API has no such stall. --simulator-as-is turns it off.
SIMULATOR_NODELAY = (
    "import sys\n"
    "from exporter.demo import simulator\n"
    "simulator.SimulatorHandler.disable_nagle_algorithm = True\n"
    "simulator.main(sys.argv[1:])\n"
)
SIMULATOR_AS_IS = False


def patch_simulator() -> bool:
    """Whether the bench must switch Nagle off in the simulator (it does not do it itself)."""
    from exporter.demo.simulator import SimulatorHandler

    return not SIMULATOR_AS_IS and not getattr(SimulatorHandler, "disable_nagle_algorithm", False)


@contextmanager
def simulator(jobs: int, latency: float, workdir: Path) -> Iterator[str]:
    """The simulator in its own process, serving ``jobs`` jobs; its URL."""
    path = workdir / f"jobs-{jobs}.json"
    if not path.exists():
        path.write_text(json.dumps(job_records(jobs)), encoding="utf-8")
    command = ["-c", SIMULATOR_NODELAY] if patch_simulator() else ["-m", "exporter.demo.simulator"]
    process = subprocess.Popen(
        [
            sys.executable,
            *command,
            "--listen",
            "127.0.0.1:0",
            "--jobs",
            str(path),
            "--latency",
            repr(latency),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "GetRunningJobs simulator on http://127.0.0.1:PORT"
        if "http://" not in line:
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        process.wait(10)


# --- 1. poll wall time ------------------------------------------------------------------------


@dataclass
class PollFigure:
    jobs: int
    pages: int
    rate: str  # which client-side rate limit was in force
    bound: float  # ceil(N/20) / concurrency * latency
    # The same within the client-side rate limit: max(bound, (pages - burst) / rate_limit).
    limited_bound: float
    floor: float  # page 1 alone, then the rest `concurrency` at a time
    concurrent: float  # median wall time, page_concurrency 4
    sequential: float | None  # median wall time, page_concurrency 1

    @property
    def ratio(self) -> float:
        return self.concurrent / self.bound

    @property
    def limited_ratio(self) -> float:
        return self.concurrent / self.limited_bound

    @property
    def speedup(self) -> float | None:
        return None if self.sequential is None else self.sequential / self.concurrent


async def timed_polls(
    endpoint: str, settings: PollSettings, repeats: int, expect: int
) -> list[float]:
    """Wall times of ``repeats`` polls by one ``TargetPoller`` (its pool stays warm between)."""
    target = make_target(endpoint)
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), settings.interval, process_metrics=False)
    poller = TargetPoller(target, settings, store, metrics.polls)
    times = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            ok = await poller.poll()
            times.append(time.perf_counter() - started)
            snapshot = store.status(target).snapshot
            if not ok or snapshot is None or snapshot.jobs != expect:
                got = None if snapshot is None else snapshot.jobs
                raise RuntimeError(f"poll failed or incomplete: ok={ok} jobs={got} want {expect}")
    finally:
        await poller.aclose()
    return times


def bench_polls(
    sizes: list[int],
    latency: float,
    rate_limit: float | None,
    repeats: dict[int, tuple[int, int]],
    workdir: Path,
) -> list[PollFigure]:
    """Poll wall times; ``repeats[N]`` = (runs at page_concurrency 4, runs at 1; 0 = skip)."""
    figures = []
    for jobs in sizes:
        pages = math.ceil(jobs / PAGE_SIZE)
        conc_repeats, seq_repeats = repeats[jobs]
        with simulator(jobs, latency, workdir) as endpoint:
            settings = poll_settings(CONCURRENCY, rate_limit)
            concurrent = asyncio.run(timed_polls(endpoint, settings, conc_repeats, jobs))
            sequential = None
            if seq_repeats:
                settings = poll_settings(1, rate_limit)
                sequential = asyncio.run(timed_polls(endpoint, settings, seq_repeats, jobs))
        figure = PollFigure(
            jobs=jobs,
            pages=pages,
            rate=rate_label(rate_limit),
            bound=pages / CONCURRENCY * latency,
            limited_bound=max(
                pages / CONCURRENCY * latency,
                (pages - CONCURRENCY) / (settings.rate_limit or UNLIMITED_RATE),
            ),
            floor=(1 + math.ceil((pages - 1) / CONCURRENCY)) * latency,
            concurrent=statistics.median(concurrent),
            sequential=None if sequential is None else statistics.median(sequential),
        )
        seq = "" if sequential is None else f", sequential {figure.sequential:7.3f}s"
        print(
            f"  {jobs:>6} jobs {pages:>5} pages, {figure.rate}: poll {figure.concurrent:7.3f}s "
            f"(runs {', '.join(f'{t:.3f}' for t in concurrent)}), bound {figure.bound:7.3f}s"
            f"{seq}",
            flush=True,
        )
        figures.append(figure)
    return figures


# --- 2. scrape throughput ---------------------------------------------------------------------


class _Union:
    """One collector yielding every family of several registries (for the stock server)."""

    def __init__(self, *registries) -> None:
        self._registries = registries

    def collect(self):
        for registry in self._registries:
            yield from registry.collect()


def nagle_off_in_web() -> bool:
    # The web server is asyncio's since issue 10: asyncio sets TCP_NODELAY on every connection.
    return True


def serve_metrics(kind: str, endpoint: str, groups: int, conn) -> None:
    """Child process serving /metrics on loopback until told to stop.

    ``ours``: ``ExporterHTTPServer`` + ``MetricsRenderer`` as the exporter runs them;
    ``ours+nodelay``: the same with TCP_NODELAY on its sockets (a what-if, see README);
    ``stock``: prometheus-client's ``start_http_server`` over the same collectors.
    The store gets its snapshot from one real poll of the simulator at ``endpoint``.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    from exporter.web.server import ExporterHTTPServer

    target = make_target(endpoint)
    settings = poll_settings(CONCURRENCY, UNLIMITED_RATE)
    store = SnapshotStore((target,))
    # The full self-metrics, process_* included, as the real exporter serves them.
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
    if kind.startswith("ours"):
        renderer = MetricsRenderer(store, metrics)
        # Older versions took the render function, newer ones the renderer itself.
        parameters = list(inspect.signature(ExporterHTTPServer).parameters)
        source = renderer if parameters[1] == "exposition" else renderer.render
        server = ExporterHTTPServer(("127.0.0.1", 0), source, lambda: True, "/metrics")
        server.serve_in_thread()
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Union(metrics.job_registry, metrics.self_registry))
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    conn.send(server.server_address[1])
    while True:
        message = conn.recv()
        if message == "stop":
            break
        # "cpu": this process's CPU seconds so far, to charge each load run its share.
        now = os.times()
        conn.send(now.user + now.system)
    server.shutdown()


@dataclass
class ScrapeFigure:
    kind: str
    encoding: str
    scrapers: int
    rate: float | None  # requests per second per scraper when paced; None: closed loop
    requests: int
    errors: int
    seconds: float
    p50: float
    p99: float
    body_bytes: int
    server_cpu: float  # CPU seconds of the server process during the run
    client_cpu: float  # CPU seconds of the load generator during the run

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def load(
    port: int, scrapers: int, seconds: float, encoding: str, rate: float | None = None
) -> tuple[list[float], int, int, float]:
    """``scrapers`` threads, each with its own keep-alive connection, for ``seconds``.

    Closed loop (``rate`` None): each scraper sends its next request as soon as it has read
    the last response, so the server is saturated and latency is mostly queueing (Little's
    law). Paced: each scraper sends ``rate`` requests a second on a fixed schedule, staggered,
    as several Prometheus servers scraping at once do, without saturating the server.
    The client is the standard library's ``http.client``: httpx costs ~2-2.7 ms of
    CPU per 780 KiB response here, 6x more, and made the load generator the bottleneck.
    Bodies are read, not decompressed. A server that closes the connection after each
    response (the stock one, HTTP/1.0) gets a new connection per request.
    """
    headers = {"Accept-Encoding": encoding}
    latencies: list[list[float]] = [[] for _ in range(scrapers)]
    errors = [0] * scrapers
    sizes = [0] * scrapers
    start = threading.Barrier(scrapers + 1)
    deadline = [math.inf]

    def scraper(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", "/metrics", headers=headers)  # connect and warm up
            connection.getresponse().read()
            start.wait()
            mine = latencies[index]
            period = None if rate is None else 1.0 / rate
            due = deadline[0] - seconds + (0.0 if period is None else period * index / scrapers)
            while True:
                if period is not None:
                    due += period
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                began = time.perf_counter()
                if began >= deadline[0]:
                    return
                connection.request("GET", "/metrics", headers=headers)
                response = connection.getresponse()
                body = response.read()
                mine.append(time.perf_counter() - began)
                if response.status != 200:
                    errors[index] += 1
                sizes[index] = len(body)
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
    elapsed = time.perf_counter() - began
    return [t for mine in latencies for t in mine], sum(errors), max(sizes), elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def bench_scrapes(
    groups: int,
    scrapers: tuple[tuple[int, float | None], ...],
    seconds: float,
    encodings: tuple[str, ...],
    kinds: tuple[str, ...],
    workdir: Path,
) -> list[ScrapeFigure]:
    context = multiprocessing.get_context("spawn")
    figures = []
    with simulator(2 * groups, 0.0, workdir) as endpoint:
        for kind in kinds:
            parent, child = context.Pipe()
            process = context.Process(target=serve_metrics, args=(kind, endpoint, groups, child))
            try:
                process.start()
                port = receive(parent, process, 120)
                for encoding, (count, rate) in itertools.product(encodings, scrapers):
                    parent.send("cpu")
                    server_before = receive(parent, process, 30)
                    client_before = os.times()
                    latencies, errors, body, elapsed = load(port, count, seconds, encoding, rate)
                    client_after = os.times()
                    parent.send("cpu")
                    server_cpu = receive(parent, process, 30) - server_before
                    figure = ScrapeFigure(
                        kind=kind,
                        encoding=encoding,
                        scrapers=count,
                        rate=rate,
                        requests=len(latencies),
                        errors=errors,
                        seconds=elapsed,
                        p50=percentile(latencies, 0.50),
                        p99=percentile(latencies, 0.99),
                        body_bytes=body,
                        server_cpu=server_cpu,
                        client_cpu=client_after.user
                        + client_after.system
                        - client_before.user
                        - client_before.system,
                    )
                    mode = "closed" if rate is None else f"{rate:g}/s each"
                    print(
                        f"  {kind:12} {encoding:8} x{count} {mode:>10}: "
                        f"{figure.throughput:7.1f} req/s, "
                        f"p50 {figure.p50 * 1000:7.2f} ms, p99 {figure.p99 * 1000:7.2f} ms, "
                        f"{figure.requests} requests, {errors} errors, "
                        f"body {body / 1024:.0f} KiB",
                        flush=True,
                    )
                    figures.append(figure)
                parent.send("stop")
            finally:
                process.join(10)
                if process.is_alive():
                    process.kill()
    return figures


# --- 3. peak RSS ------------------------------------------------------------------------------


def proc_status(field: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def checkpoints(polls: int) -> list[int]:
    """Poll numbers after which peak RSS is recorded: 1, 2, 5, 10, 20, 50, 100, ..., polls."""
    marks = {1, polls}
    step = 1
    while step < polls:
        marks.update(m * step for m in (1, 2, 5) if m * step < polls)
        step *= 10
    return sorted(marks)


def poll_loop(endpoint: str, jobs: int, polls: int, rate_limit: float, conn) -> None:
    """Child process: one exporter's poller (and a scrape after every poll), ``polls`` times."""

    async def run() -> dict:
        target = make_target(endpoint)
        settings = poll_settings(CONCURRENCY, rate_limit)
        store = SnapshotStore((target,))
        metrics = ExporterMetrics(store, (target,), (), settings.interval, process_metrics=False)
        renderer = MetricsRenderer(store, metrics)
        poller = TargetPoller(target, settings, store, metrics.polls)
        result: dict = {"rss_before": proc_status("VmRSS"), "peaks": {}}
        marks = set(checkpoints(polls))
        times = []
        try:
            for number in range(1, polls + 1):
                started = time.perf_counter()
                ok = await poller.poll()
                times.append(time.perf_counter() - started)
                snapshot = store.status(target).snapshot
                if not ok or snapshot is None or snapshot.jobs != jobs:
                    raise RuntimeError(f"poll {number} failed or incomplete")
                renderer.render()  # as a scrape would, once per published poll
                if number in marks:
                    result["peaks"][number] = proc_status("VmHWM")
        finally:
            await poller.aclose()
        result["rss_n"] = proc_status("VmRSS")
        result["poll_seconds"] = statistics.median(times)
        return result

    conn.send(asyncio.run(run()))


@dataclass
class RssFigure:
    jobs: int
    polls: int
    before: int  # RSS once set up, before the first poll
    peaks: dict[int, int]  # VmHWM after poll number k
    rss_n: int  # VmRSS after the last poll
    poll_seconds: float

    @property
    def hwm_1(self) -> int:
        return self.peaks[1]

    @property
    def hwm_n(self) -> int:
        return self.peaks[self.polls]

    @property
    def ratio(self) -> float:
        return self.hwm_n / self.hwm_1

    @property
    def warm(self) -> int:
        """The checkpoint used as the warmed-up baseline: 10 polls, or the nearest below."""
        return max(k for k in self.peaks if k <= max(1, min(10, self.polls // 10)))


def receive(conn, process, timeout: float):
    """The child's next message; raises if it died or stayed silent for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not conn.poll(0.5):
        if not process.is_alive():
            raise RuntimeError(f"child process died with exit code {process.exitcode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"child process silent for {timeout:g}s")
    return conn.recv()


def bench_rss(jobs: int, polls: int, latency: float, rate_limit: float, workdir: Path) -> RssFigure:
    context = multiprocessing.get_context("spawn")
    with simulator(jobs, latency, workdir) as endpoint:
        parent, child = context.Pipe()
        process = context.Process(target=poll_loop, args=(endpoint, jobs, polls, rate_limit, child))
        process.start()
        try:
            result = receive(parent, process, 3600)
        finally:
            process.join(10)
    figure = RssFigure(
        jobs=jobs,
        polls=polls,
        before=result["rss_before"],
        peaks=result["peaks"],
        rss_n=result["rss_n"],
        poll_seconds=result["poll_seconds"],
    )
    trajectory = ", ".join(f"{k}: {v / MiB:.1f}" for k, v in sorted(figure.peaks.items()))
    print(
        f"  {jobs} jobs: RSS before the first poll {figure.before / MiB:.1f} MiB; peak RSS (MiB) "
        f"after poll {trajectory}; RSS after the last {figure.rss_n / MiB:.1f} MiB; "
        f"median poll {figure.poll_seconds:.2f}s",
        flush=True,
    )
    return figure


# --- main -------------------------------------------------------------------------------------


def verdict(passed: bool, *figures: ScrapeFigure) -> str:
    """PASS or MISS; ERROR when a scrape run behind the figure got a non-200 answer."""
    if any(figure.errors for figure in figures):
        return "ERROR"
    return "PASS" if passed else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--latency", type=float, default=0.05, help="API latency, part 1 (s)")
    parser.add_argument("--rss-latency", type=float, default=0.001, help="API latency, part 3")
    parser.add_argument("--scrapers", type=int, default=8, help="concurrent scrapers, part 2")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=25.0,
        help="scrapes per second of each paced scraper, part 2",
    )
    parser.add_argument(
        "--simulator-as-is",
        action="store_true",
        help="run the simulator without TCP_NODELAY (see SIMULATOR_NODELAY)",
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=("poll", "scrape", "rss"), help="skip a part"
    )
    args = parser.parse_args(argv)
    global SIMULATOR_AS_IS
    SIMULATOR_AS_IS = args.simulator_as_is

    if args.quick:
        sizes = [200, 2000]
        repeats = {200: (3, 2), 2000: (2, 1)}
        default_rate_repeats = {200: (1, 0), 2000: (1, 0)}
        scrape_seconds, rss_jobs, rss_polls = 2.0, 2000, 10
    else:
        sizes = [200, 2000, 20000]
        repeats = {200: (5, 3), 2000: (3, 2), 20000: (2, 1)}
        default_rate_repeats = {200: (1, 0), 2000: (1, 0), 20000: (1, 0)}
        scrape_seconds, rss_jobs, rss_polls = 5.0, 20000, 100
    groups = QUOTAS * PROJECTS
    encodings = ("identity", "gzip")
    scrapers = ((args.scrapers, None), (1, None), (args.scrapers, args.paced_rate))
    kinds = ("ours", "stock") if nagle_off_in_web() else ("ours", "stock", "ours+nodelay")

    print(
        f"maxcompute-exporter benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
        f"{'quick' if args.quick else 'full'} mode; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}",
        flush=True,
    )
    print(
        "simulator: "
        + ("with TCP_NODELAY set by the bench" if patch_simulator() else "as shipped")
        + "; each measured party in a process of its own",
        flush=True,
    )
    started = time.perf_counter()
    polls: list[PollFigure] = []
    default_polls: list[PollFigure] = []
    scrapes: list[ScrapeFigure] = []
    rss: RssFigure | None = None
    with tempfile.TemporaryDirectory(prefix="mc-bench-") as tmp:
        workdir = Path(tmp)
        if "poll" not in args.skip:
            print(
                f"\n1. Poll wall time: TargetPoller, page_concurrency {CONCURRENCY} vs 1, "
                f"simulator latency {args.latency}s per response, {QUOTAS} quotas x "
                f"{PROJECTS} projects",
                flush=True,
            )
            polls = bench_polls(sizes, args.latency, UNLIMITED_RATE, repeats, workdir)
            default_polls = bench_polls(sizes, args.latency, None, default_rate_repeats, workdir)
        if "scrape" not in args.skip:
            print(
                f"\n2. /metrics with {groups} groups: keep-alive http.client scrapers (threads "
                f"of this process): {args.scrapers} and 1 in a closed loop, {args.scrapers} "
                f"paced at {args.paced_rate:g}/s each; {scrape_seconds:g}s per run; each server "
                "in a process of its own",
                flush=True,
            )
            scrapes = bench_scrapes(groups, scrapers, scrape_seconds, encodings, kinds, workdir)
        if "rss" not in args.skip:
            print(
                f"\n3. Peak RSS of the poll loop (own process), {rss_jobs} jobs, simulator "
                f"latency {args.rss_latency}s, {rate_label(UNLIMITED_RATE)}",
                flush=True,
            )
            rss = bench_rss(rss_jobs, rss_polls, args.rss_latency, UNLIMITED_RATE, workdir)

    rows: list[tuple[str, str, str, str]] = []
    if polls:
        print("\nPoll wall time (median of runs)")
        print(
            f"  {'jobs':>6} {'pages':>5} {'rate limit':<26} {'poll s':>8} {'bound s':>8} "
            f"{'poll/bound':>10} {'floor s':>8} {'seq s':>8} {'speed-up':>8}"
        )
        for figure in polls + default_polls:
            seq = "-" if figure.sequential is None else f"{figure.sequential:.3f}"
            speedup = "-" if figure.speedup is None else f"{figure.speedup:.2f}x"
            print(
                f"  {figure.jobs:>6} {figure.pages:>5} {figure.rate:<26} {figure.concurrent:8.3f} "
                f"{figure.bound:8.3f} {figure.ratio:9.2f}x {figure.floor:8.3f} {seq:>8} "
                f"{speedup:>8}"
            )
        for figure in polls:
            last = figure is polls[-1]
            rows.append(
                (
                    f"poll/bound, {figure.jobs} jobs, {figure.rate}",
                    f"{figure.ratio:.2f}x",
                    "<= 1.3x" if last else "",
                    verdict(figure.ratio <= 1.3) if last else "",
                )
            )
        for figure in default_polls:
            last = figure is default_polls[-1]
            rows.append(
                (
                    f"poll/API bound, {figure.jobs} jobs, {figure.rate}",
                    f"{figure.ratio:.2f}x",
                    "",
                    "",
                )
            )
            rows.append(
                (
                    f"poll/bound within the rate limit, {figure.jobs} jobs, {figure.rate}",
                    f"{figure.limited_ratio:.2f}x",
                    "<= 1.3x" if last else "",
                    verdict(figure.limited_ratio <= 1.3) if last else "",
                )
            )
        for figure in polls:
            rows.append(
                (f"speed-up vs sequential, {figure.jobs} jobs", f"{figure.speedup:.2f}x", "", "")
            )

    if scrapes:
        print("\nScrapes (CPU per request: of the server process / of the load generator)")
        print(
            f"  {'server':12} {'encoding':8} {'scrapers':>8} {'pace':>9} {'req/s':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'body KiB':>9} {'errors':>6} {'server CPU':>10} "
            f"{'client CPU':>10}"
        )
        by_key = {(f.kind, f.encoding, f.scrapers, f.rate): f for f in scrapes}
        for figure in scrapes:
            requests = max(figure.requests, 1)
            pace = "closed" if figure.rate is None else f"{figure.rate:g}/s"
            print(
                f"  {figure.kind:12} {figure.encoding:8} {figure.scrapers:>8} {pace:>9} "
                f"{figure.throughput:8.1f} {figure.p50 * 1000:8.2f} {figure.p99 * 1000:8.2f} "
                f"{figure.body_bytes / 1024:9.0f} {figure.errors:>6} "
                f"{figure.server_cpu / requests * 1000:7.2f} ms "
                f"{figure.client_cpu / requests * 1000:7.2f} ms"
            )
        many = args.scrapers
        for encoding in encodings:
            ours = by_key["ours", encoding, many, None]
            stock = by_key["stock", encoding, many, None]
            paced = by_key["ours", encoding, many, args.paced_rate]
            ratio = ours.throughput / stock.throughput
            rows.append(
                (
                    f"throughput ours/stock, {encoding}, {many} scrapers",
                    f"{ratio:.1f}x",
                    ">= 5x",
                    verdict(ratio >= 5, ours, stock),
                )
            )
            rows.append(
                (
                    f"p99 ours, {encoding}, {many} scrapers paced at {args.paced_rate:g}/s each",
                    f"{paced.p99 * 1000:.2f} ms",
                    "<= 5 ms",
                    verdict(paced.p99 <= 0.005, paced),
                )
            )
            rows.append(
                (
                    f"p99 ours, {encoding}, {many} scrapers closed loop (saturated)",
                    f"{ours.p99 * 1000:.2f} ms",
                    "",
                    "",
                )
            )
            rows.append(
                (
                    f"p99 stock, {encoding}, {many} scrapers",
                    f"{stock.p99 * 1000:.2f} ms",
                    "",
                    "",
                )
            )
            for kind in kinds:
                if kind == "stock":
                    continue
                figure = by_key[kind, encoding, 1, None]
                rows.append(
                    (
                        f"p99 {kind}, {encoding}, 1 scraper",
                        f"{figure.p99 * 1000:.2f} ms",
                        "(<= 5 ms)",
                        verdict(figure.p99 <= 0.005, figure),
                    )
                )
            if "ours+nodelay" in kinds:
                figure = by_key["ours+nodelay", encoding, many, None]
                rows.append(
                    (
                        f"what-if ours+nodelay, {encoding}, {many} scrapers: p99, x stock",
                        f"{figure.p99 * 1000:.2f} ms, {figure.throughput / stock.throughput:.0f}x",
                        "",
                        "",
                    )
                )

    if rss is not None:
        rows.append(
            (
                f"peak RSS {rss.polls} polls / 1 poll, {rss.jobs} jobs",
                f"{rss.ratio:.3f}x",
                "<= 1.1x",
                verdict(rss.ratio <= 1.1),
            )
        )
        warm = rss.peaks[rss.warm]
        rows.append(
            (
                f"peak RSS {rss.polls} polls / {rss.warm} polls (warmed up; no target)",
                f"{rss.hwm_n / warm:.3f}x",
                "",
                "",
            )
        )
        rows.append(
            (
                f"peak RSS after 1 / {rss.warm} / {rss.polls} polls",
                f"{rss.hwm_1 / MiB:.1f} / {warm / MiB:.1f} / {rss.hwm_n / MiB:.1f} MiB",
                "",
                "",
            )
        )

    print(f"\nSummary ({time.perf_counter() - started:.0f}s)")
    width = max((len(row[0]) for row in rows), default=10)
    print(f"  {'figure':<{width}}  {'measured':>18}  {'target':>8}  result")
    for name, value, target, result in rows:
        print(f"  {name:<{width}}  {value:>18}  {target:>8}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
