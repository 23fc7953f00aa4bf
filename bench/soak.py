"""Soak: the exporter against a running list that moves, with random faults; every number checked.

Runs ``maxcompute-exporter`` as a subprocess for a few minutes against the simulator, whose jobs
finish and are submitted all the time (a churning list) and whose faults (throttling, 5xx,
dropped connections, latency, outages) switch at random. Every list the simulator served is
recorded. At every scrape, while ``maxcompute_up`` is 1, each (quota, project) group's job count,
CU, memory and progress sums must lie between the values of the jobs that ran throughout the last
good poll (they must all be counted) and of the jobs that ran at some moment of it (no other job
may be): what a read of a moving list can promise. Prints the count of scrapes checked and of
wrong values; exits 1 if any value was wrong.

    python bench/soak.py --duration 180
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.api.wire.jobs import parse_job  # noqa: E402
from exporter.demo.churn import Churn, ChurningJobs  # noqa: E402
from exporter.demo.simulator import ApiSimulator, Faults  # noqa: E402
from exporter.polling.derive.aggregation import aggregate  # noqa: E402

KEY_ID, SECRET = "LTAIsoak", "soak-secret"
FAULTS = [
    ("none", Faults()),
    ("throttle", Faults(throttle=0.3)),
    ("5xx", Faults(server_error=0.3)),
    ("disconnect", Faults(disconnect=0.2)),
    ("latency", Faults(latency=0.3)),
    ("outage", Faults(server_error=1.0)),
]
# Sums of values that are never negative: between the jobs that must be in and those that may.
FIELDS = {
    "maxcompute_running_jobs": "running_jobs",
    "maxcompute_running_jobs_cu_ratio": "cu_ratio",
    "maxcompute_running_jobs_memory_ratio": "memory_ratio",
    "maxcompute_running_jobs_progress_sum_ratio": "progress_sum",
}


class ServedLists:
    """A job source that records every distinct list it serves, with the time it served it."""

    def __init__(self, work: ChurningJobs) -> None:
        self._work = work
        self._lock = threading.Lock()
        self.served: list[tuple[float, dict[str, dict]]] = []
        self._last: object = None

    def __call__(self, now: float) -> list[dict]:
        listing = self._work(now)
        with self._lock:
            if listing is not self._last:
                self._last = listing
                self.served.append((now, {job["instanceId"]: job for job in listing}))
        return listing

    def during(self, start: float, end: float) -> tuple[list[dict], list[dict]]:
        """Jobs served throughout [start, end], and jobs served at some moment of it."""
        with self._lock:
            served = list(self.served)
        before = [jobs for at, jobs in served if at <= start][-1:]
        inside = [jobs for at, jobs in served if start < at <= end]
        states = before + inside
        throughout = set.intersection(*(set(jobs) for jobs in states)) if states else set()
        ever: dict[str, dict] = {}
        for jobs in states:
            ever.update(jobs)
        return [ever[i] for i in throughout], list(ever.values())


def totals(jobs: list[dict], now: float) -> dict[tuple, float]:
    result = aggregate(parse_job(record, now) for record in jobs)
    out = {}
    for key, group in result.groups.items():
        for metric, field in FIELDS.items():
            out[(metric, key.quota, key.project)] = float(getattr(group, field))
    return out


def outside(published: dict[tuple, float], fewest: dict, most: dict) -> list[tuple]:
    """The published values that no read of the moving list could have given."""
    wrong = [key for key in published if key not in most]
    wrong += [key for key in fewest if key not in published]
    for key, value in published.items():
        low, high = fewest.get(key, 0.0), most.get(key, 0.0)
        if not low - 1e-9 <= value <= high + 1e-9:
            wrong.append(key)
    return wrong


def scrape(url: str) -> tuple[float, float | None, dict[tuple, float]]:
    text = httpx.get(url, timeout=5).text
    up, last_success, jobs = 0.0, None, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "maxcompute_up":
                up = sample.value
            elif sample.name == "maxcompute_exporter_last_success_timestamp_seconds":
                last_success = sample.value
            elif sample.name in FIELDS:
                labels = sample.labels
                jobs[(sample.name, labels["quota"], labels["project"])] = sample.value
    return up, last_success, jobs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds to run")
    parser.add_argument("--running", type=int, default=300, help="jobs running at once")
    parser.add_argument("--churn", type=float, default=3, help="jobs finishing (and submitted)/s")
    parser.add_argument("--fault-every", type=float, default=4, help="seconds per fault mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    churn = Churn(args.churn, args.churn)
    work = ChurningJobs(args.running, churn, start=time.time(), spread=3000, seed=args.seed)
    served = ServedLists(work)
    simulator = ApiSimulator(served, credentials={KEY_ID: (SECRET, None)}).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
            "poll:\n  interval: 2s\n  window: 1h\n  timeout: 500ms\n  retries: 2\n"
            "  retry_backoff: 50ms\n  rate_limit: 200\n  deadline: 1800ms\n"
            "  max_staleness: 6s\n"
        )
        exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--log.level",
                "error",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            },
        )
        url = f"http://127.0.0.1:{port}/metrics"
        checked = wrong = down = 0
        modes: dict[str, int] = {}
        try:
            deadline = time.time() + args.duration
            next_fault = 0.0
            while time.time() < deadline:
                if time.time() >= next_fault:
                    name, faults = rng.choice(FAULTS)
                    simulator.set_faults(faults)
                    modes[name] = modes.get(name, 0) + 1
                    next_fault = time.time() + args.fault_every
                time.sleep(0.5)
                try:
                    up, last_success, jobs = scrape(url)
                except httpx.TransportError:
                    continue  # still starting
                checked += 1
                if up != 1 or last_success is None:
                    down += 1
                    continue
                # The last good poll ran at most its deadline (1.8 s) before it ended.
                throughout, ever = served.during(last_success - 2.0, last_success + 0.2)
                fewest, most = totals(throughout, last_success), totals(ever, last_success)
                bad = outside(jobs, fewest, most)
                if bad:
                    wrong += 1
                    print(f"wrong values at {time.time():.1f}: {bad[:3]}")
        finally:
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(10)
            simulator.stop()
    print(f"fault modes used: {modes}")
    print(f"scrapes checked: {checked}  while up: {checked - down}  while down: {down}")
    print(f"wrong values: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
