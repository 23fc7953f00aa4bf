"""`/metrics` of a 50-target fleet while the interpreter is busy polling: the GIL switch interval.

The web server answers on threads of its own, but Python runs one thread at a time: while a
round of polls parses pages on the main thread, a scrape's thread waits for the interpreter at
each step of its response, up to the switch interval each time (5 ms by default). The exporter
sets it to 1 ms (``exporter.cli.SWITCH_INTERVAL``). Measured here, in one run, alternating:

- gzip scrapes of 50 targets' exposition (1 000 groups x 8 series each, about 4.6 MiB gzipped)
  from ``ExporterHTTPServer``, while a pure-Python loop on the main thread stands in for the polls
- p50 and p99 with the default 5 ms against 1 ms, and their ratios              (p99 <= 250 ms)

The scraper is ``curl`` in a process of its own, so only the server shares the interpreter.

Run: ``.venv/bin/python bench/scrape_during_polls.py`` (about 1 minute) or ``--quick``.
"""

from __future__ import annotations

import argparse
import gzip
import random
import subprocess
import sys
import threading

from common import figure, percentile

from exporter.cli import SWITCH_INTERVAL
from exporter.web.server import ExporterHTTPServer

TARGETS, GROUPS, FAMILIES = 50, 1000, 8
DEFAULT_INTERVAL = 0.005  # CPython's sys.getswitchinterval() unless set


class FleetExposition:
    """50 targets' pre-rendered chunks, as ``MetricsRenderer`` holds them between polls."""

    def __init__(self) -> None:
        values = random.Random(1)
        self.parts = tuple(
            "".join(
                f'maxcompute_running_jobs_cu_ratio{{account="a{t:03d}",project="p_{g // 50:02d}",'
                f'quota="q_{g % 50:02d}",region="cn-hangzhou"}} {values.random()}\n'
                for g in range(GROUPS)
                for _ in range(FAMILIES)
            ).encode()
            for t in range(TARGETS)
        )
        self.gzipped = gzip.compress(b"".join(self.parts), 6)

    def render_parts(self) -> tuple[bytes, ...]:
        return self.parts

    def render_gzip(self) -> bytes:
        return self.gzipped


class NoReport:
    """The status page's protocol, empty: only /metrics is measured."""

    def html(self) -> bytes:
        return b""

    def not_ready(self) -> str:
        return ""

    def not_ready_reasons(self) -> str:
        return ""


def scrape_seconds(port: int) -> float:
    """One gzip scrape by curl on a fresh connection, as Prometheus after a restart."""
    written = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "-H", "Accept-Encoding: gzip",
         f"http://127.0.0.1:{port}/metrics"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(written)


def main(quick: bool) -> None:
    exposition = FleetExposition()
    server = ExporterHTTPServer(("127.0.0.1", 0), exposition, lambda: True, report=NoReport())
    server.serve_in_thread()
    port = server.server_address[1]
    busy = threading.Event()

    def polls_stand_in() -> None:
        total = 0
        while not busy.is_set():
            for number in range(1000):
                total += number * number

    threading.Thread(target=polls_stand_in, daemon=True).start()
    latencies: dict[float, list[float]] = {DEFAULT_INTERVAL: [], SWITCH_INTERVAL: []}
    rounds, scrapes = (2, 20) if quick else (4, 40)
    for _ in range(rounds):  # alternated, so the machine's load falls on both
        for interval, seen in latencies.items():
            sys.setswitchinterval(interval)
            seen += [scrape_seconds(port) for _ in range(scrapes)]
    busy.set()
    server.shutdown()
    size = len(exposition.gzipped) / 2**20
    print(f"{TARGETS} targets' /metrics, {size:.1f} MiB gzipped, the interpreter busy meanwhile")
    for interval, seen in latencies.items():
        name = f"switch interval {interval * 1000:g} ms"
        figure(f"{name}: p50", percentile(seen, 0.5) * 1000, "-", unit="ms")
        figure(f"{name}: p99", percentile(seen, 0.99) * 1000, "<= 250", unit="ms")
    before, now = latencies[DEFAULT_INTERVAL], latencies[SWITCH_INTERVAL]
    figure("p50, 1 ms / 5 ms", percentile(now, 0.5) / percentile(before, 0.5), "-")
    figure("p99, 1 ms / 5 ms", percentile(now, 0.99) / percentile(before, 0.99), "-")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer scrapes")
    main(parser.parse_args().quick)
