"""What the benchmarks share: the workload, the simulator in its own process, small measures.

Every benchmark prints its figures as ratios of two measurements taken in the same run, so a
slower or busier machine moves both sides. None of them is a test: they exit 0 whatever the
figures, non-zero only if something crashed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `python bench/x.py` works from a plain checkout
    sys.path.insert(0, str(ROOT))

from exporter.config import Credentials, PollSettings, Target  # noqa: E402
from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET  # noqa: E402

QUOTAS, PROJECTS = 50, 20
MiB = 1024 * 1024
CREDENTIALS = Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)


def job_records(count: int, now: int | None = None) -> list[dict]:
    """``count`` running jobs over QUOTAS x PROJECTS groups, submitted within the last hour."""
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
    return Target(region="cn-hangzhou", endpoint=endpoint, credentials=CREDENTIALS)


def bench_settings(**overrides: float) -> PollSettings:
    """The defaults with a long interval, so the poll deadline never bites a measured poll."""
    return PollSettings(**{"interval": 3600.0, "timeout": 30.0, **overrides})


@contextmanager
def simulator_process(jobs: int, latency: float, workdir: Path) -> Iterator[str]:
    """The simulator serving ``jobs`` fixed jobs, in a process of its own; its URL."""
    path = workdir / f"jobs-{jobs}.json"
    if not path.exists():
        path.write_text(json.dumps(job_records(jobs)), encoding="utf-8")
    with simulator_with("--jobs", str(path), "--latency", repr(latency)) as url:
        yield url


@contextmanager
def simulator_with(*args: str) -> Iterator[str]:
    """``python -m exporter.demo ARGS`` in a process of its own (no GIL shared with what
    is measured); its URL."""
    command = [sys.executable, "-m", "exporter.demo", "--listen", "127.0.0.1:0", *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "GetRunningJobs simulator on http://127.0.0.1:PORT"
        if "http://" not in line:
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        process.wait(10)


def receive(conn, process, timeout: float):
    """A child process's next message; raises if it died or stayed silent for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not conn.poll(0.5):
        if not process.is_alive():
            raise RuntimeError(f"child process died with exit code {process.exitcode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"child process silent for {timeout:g}s")
    return conn.recv()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def proc_status(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def figure(name: str, value: float, target: str, unit: str = "x") -> None:
    """One line of a benchmark's result table."""
    print(f"  {name:<66} {value:8.2f}{unit:<2} target {target}", flush=True)
