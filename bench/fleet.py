"""A fleet in one process: 50 targets of 2 000 jobs each against 1 target, the real exporter.

The exporter runs as users run it (``python -m exporter --config ...``, a child process), its
targets all polling one simulator process serving 2 000 jobs over 1 000 (quota, project)
groups; each target is an account of its own (its own AccessKey, which the simulator knows,
and its own ``account`` label). For 1 target, then for 50, it measures:

- the time from start until ``/ready`` answers 200 (every target has had a good poll), against
  ``poll.interval`` (target: within one interval);
- ``/metrics`` scrapes, one at a time on a fresh connection every 100 ms over more than one
  interval (so the second round of polls publishes while it is scraped): p50 and p99, plain;
- ``/metrics`` size, and the exporter's RSS (VmRSS) and peak RSS (VmHWM) at the end.

Each figure of the 50-target run is printed beside the 1-target one, as a ratio.

    python bench/fleet.py             # about 5 minutes
    python bench/fleet.py --quick     # 10 targets
    python bench/fleet.py --plain-every 10  # mostly gzip scrapes, as Prometheus sends
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
from common import PROJECTS, QUOTAS, ROOT, MiB, figure, job_records, percentile, receive

SECRET = "fleet-bench-secret"

JOBS = 2000
INTERVAL = 60.0  # the default poll.interval


@dataclass(frozen=True, slots=True)
class FleetRun:
    targets: int
    ready_seconds: float
    latencies: tuple[float, ...]
    gzip_latencies: tuple[float, ...]
    body_bytes: int
    gzip_bytes: int
    rss: int
    peak_rss: int


def key_id(n: int) -> str:
    return f"LTAIfleet{n:03d}"


def serve_simulator(targets: int, conn) -> None:
    """Child process: one simulator knowing every target's AccessKey, until told to stop."""
    from exporter.demo.simulator import ApiSimulator

    credentials = {key_id(n): (SECRET, None) for n in range(targets)}
    simulator = ApiSimulator(job_records(JOBS), credentials=credentials).start()
    conn.send(simulator.url)
    conn.recv()
    simulator.stop()


def config_text(endpoint: str, targets: int) -> str:
    lines = [
        f"poll: {{interval: {INTERVAL:g}s, timeout: 10s, window: 2h}}",
        "metrics: {max_projects_per_quota: 500}",
        "targets:",
    ]
    lines += [
        f"  - {{region: cn-hangzhou, endpoint: '{endpoint}', labels: {{account: a{n:03d}}}, "
        f"credentials: {{access_key_id: {key_id(n)}, access_key_secret: {SECRET}}}}}"
        for n in range(targets)
    ]
    return "\n".join(lines) + "\n"


def proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_fleet(endpoint: str, targets: int, workdir: Path, plain_every: int = 1) -> FleetRun:
    config = workdir / f"fleet-{targets}.yaml"
    config.write_text(config_text(endpoint, targets), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    command = [sys.executable, "-m", "exporter", "--config", str(config)]
    command += ["--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        ready = wait_ready(base, process, started)
        scrapes = scrape_for(base, INTERVAL * 1.2, plain_every)
        return FleetRun(
            targets,
            ready,
            tuple(scrapes["identity"][0]),
            tuple(scrapes["gzip"][0]),
            scrapes["identity"][1],
            scrapes["gzip"][1],
            proc_kib(process.pid, "VmRSS"),
            proc_kib(process.pid, "VmHWM"),
        )
    finally:
        process.terminate()
        process.wait(30)


def wait_ready(base: str, process: subprocess.Popen, started: float) -> float:
    """Seconds from the process's start until /ready answers 200."""
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exporter exited with {process.returncode}")
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        if time.monotonic() - started > 10 * INTERVAL:
            raise RuntimeError("not ready within 10 intervals")
        time.sleep(0.05)


def scrape_for(
    base: str, seconds: float, plain_every: int = 1
) -> dict[str, tuple[list[float], int]]:
    """Scrapes every 100 ms, plain and gzip in turn (plain only every ``plain_every``-th
    round), each on a new connection (as Prometheus after a restart): each encoding's
    latencies and its last body's size."""
    host, port = base.removeprefix("http://").split(":")
    seen: dict[str, tuple[list[float], int]] = {"identity": ([], 0), "gzip": ([], 0)}
    end = time.monotonic() + seconds
    for round_number in itertools.count():
        if time.monotonic() >= end:
            break
        for encoding, (latencies, _) in list(seen.items()):
            if encoding == "identity" and round_number % plain_every:
                continue
            began = time.perf_counter()
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            connection.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
            size = len(connection.getresponse().read())
            connection.close()
            latencies.append(time.perf_counter() - began)
            seen[encoding] = (latencies, size)
            time.sleep(0.05)
    return seen


def report(one: FleetRun, many: FleetRun) -> None:
    print(f"  {'':<40} {'1 target':>12} {f'{many.targets} targets':>12} {'ratio':>8}")
    rows = [
        ("time to ready (s)", one.ready_seconds, many.ready_seconds),
        (
            "scrape p50 (ms)",
            percentile(list(one.latencies), 0.5) * 1000,
            percentile(list(many.latencies), 0.5) * 1000,
        ),
        (
            "scrape p99 (ms)",
            percentile(list(one.latencies), 0.99) * 1000,
            percentile(list(many.latencies), 0.99) * 1000,
        ),
        ("scrape max (ms)", max(one.latencies) * 1000, max(many.latencies) * 1000),
        (
            "gzip scrape p50 (ms)",
            percentile(list(one.gzip_latencies), 0.5) * 1000,
            percentile(list(many.gzip_latencies), 0.5) * 1000,
        ),
        (
            "gzip scrape p99 (ms)",
            percentile(list(one.gzip_latencies), 0.99) * 1000,
            percentile(list(many.gzip_latencies), 0.99) * 1000,
        ),
        ("/metrics (MiB)", one.body_bytes / MiB, many.body_bytes / MiB),
        ("/metrics gzip (MiB)", one.gzip_bytes / MiB, many.gzip_bytes / MiB),
        ("RSS (MiB)", one.rss / MiB, many.rss / MiB),
        ("peak RSS (MiB)", one.peak_rss / MiB, many.peak_rss / MiB),
    ]
    for name, a, b in rows:
        print(f"  {name:<40} {a:12.1f} {b:12.1f} {b / a:7.2f}x")
    figure(
        f"time to ready / poll.interval, {many.targets} targets",
        many.ready_seconds / INTERVAL,
        "<= 1x",
    )
    figure(
        f"RSS per target beyond the first, / 1-target RSS, {many.targets} targets",
        (many.rss - one.rss) / (many.targets - 1) / one.rss,
        "report",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 targets instead of 50")
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument(
        "--plain-every",
        type=int,
        default=1,
        help="scrape plain only every Nth round (Prometheus always asks for gzip; a plain "
        "scrape of 50 targets moves ~80 MB through the shared cores)",
    )
    args = parser.parse_args()
    targets = 10 if args.quick else args.targets
    print(
        f"fleet, measured {date.today()}: {JOBS} jobs in {QUOTAS * PROJECTS} groups per target, "
        f"1 vs {targets} targets, poll.interval {INTERVAL:g}s, {os.cpu_count()} CPUs"
    )
    parent, child = multiprocessing.Pipe()
    simulator = multiprocessing.Process(target=serve_simulator, args=(targets, child))
    simulator.start()
    try:
        endpoint = receive(parent, simulator, 60)
        with tempfile.TemporaryDirectory() as workdir:
            one = run_fleet(endpoint, 1, Path(workdir), args.plain_every)
            many = run_fleet(endpoint, targets, Path(workdir), args.plain_every)
    finally:
        parent.send("stop")
        simulator.join(10)
    report(one, many)


if __name__ == "__main__":
    main()
