"""Soak: the exporter against the simulator with random faults; every number checked.

Runs ``maxcompute-exporter`` as a subprocess for a few minutes against the simulator, whose job
set changes every few seconds and whose faults (throttling, 5xx, dropped connections, latency)
switch at random. At every scrape, while ``maxcompute_up`` is 1, each job metric must equal the
simulator's truth for a job set that was being served during the last good poll; a value that
matches none is wrong. Prints the count of scrapes checked and of wrong values; exits 1 if any
value was wrong.

    python bench/soak.py --duration 180
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.api.jobs import parse_job  # noqa: E402
from exporter.demo.simulator import ApiSimulator, Faults  # noqa: E402
from exporter.polling.aggregation import aggregate  # noqa: E402

KEY_ID, SECRET = "LTAIsoak", "soak-secret"
FAULTS = [
    ("none", Faults()),
    ("throttle", Faults(throttle=0.3)),
    ("5xx", Faults(server_error=0.3)),
    ("disconnect", Faults(disconnect=0.2)),
    ("latency", Faults(latency=0.3)),
    ("outage", Faults(server_error=1.0)),
]
FIELDS = {
    "maxcompute_running_jobs": "running_jobs",
    "maxcompute_running_jobs_cu_ratio": "cu_ratio",
    "maxcompute_running_jobs_memory_ratio": "memory_ratio",
    "maxcompute_running_jobs_progress_sum_ratio": "progress_sum",
    "maxcompute_running_jobs_oldest_start_timestamp_seconds": "oldest_start_seconds",
    "maxcompute_running_jobs_max_queue_seconds": "max_queue_seconds",
}


def job_set(version: int, start: int) -> list[dict]:
    """A job set per version, of a size that differs from its neighbours'."""
    rng = random.Random(version)
    jobs = []
    for n in range(40 + (version % 7) * 5):
        started = start - rng.randint(10, 900)
        jobs.append(
            {
                "instanceId": f"v{version}-{n}",
                "jobOwner": "RAM$soak:robot",
                "project": f"project_{rng.randint(0, 4)}",
                "quotaNickname": f"quota_{rng.randint(0, 2)}",
                "cuSnapshot": rng.randint(1, 64) / 1024,
                "memorySnapshot": rng.randint(1, 64) / 1024,
                "submittedAtTime": started - rng.randint(0, 120),
                "runningAtTime": started,
                "progress": rng.randint(0, 100) / 100,
            }
        )
    return jobs


def truth(jobs: list[dict], now: float) -> dict[tuple, float]:
    result = aggregate(parse_job(record, now) for record in jobs)
    out = {}
    for key, group in result.groups.items():
        for metric, field in FIELDS.items():
            out[(metric, key.quota, key.project)] = float(getattr(group, field))
    return out


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


def same(a: dict[tuple, float], b: dict[tuple, float]) -> bool:
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9) for k in a
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds to run")
    parser.add_argument("--change-every", type=float, default=5, help="seconds per job set")
    parser.add_argument("--fault-every", type=float, default=4, help="seconds per fault mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = int(time.time())

    def version_at(now: float) -> int:
        return int((now - start) // args.change_every)

    simulator = ApiSimulator(
        lambda now: job_set(version_at(now), start), credentials={KEY_ID: (SECRET, None)}
    ).start()
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
                # The last good poll ran at most `deadline` before it ended: any job set
                # served in that span is a right answer.
                versions = range(version_at(last_success - 2.0), version_at(last_success) + 1)
                if not any(same(jobs, truth(job_set(v, start), last_success)) for v in versions):
                    wrong += 1
                    print(f"wrong values at {time.time():.1f} (versions {list(versions)})")
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
