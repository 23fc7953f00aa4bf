"""The jobs poll beside a quota API in trouble: its time with GetQuotaUsage hung, throttled and
healthy, against the quota poll off, in one run.

Each scenario runs one target in process against the simulator on loopback (its own threads):
2 000 running jobs, 24 quotas, every answer ``LATENCY`` late; ListQuotas once, then a usage round
started beside ``POLLS`` jobs polls. The figure is the median time of the planned jobs polls (the
2nd onwards) over the same median with the quota poll off; scenarios are interleaved, and each
one's median is taken over every repetition (target <= 1.1x). The process's CPU seconds per jobs
poll (the simulator's threads included, the same work in every scenario) are shown beside it: on
a loaded machine wall time is noisy, CPU time less so.

Run: ``.venv/bin/python bench/quota_isolation.py`` (about 3 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import statistics

from common import figure

from tests.support.quota_isolation import jobs_polls_beside

LATENCY = 0.010
POLLS = 6
SCENARIOS = {"quota poll off": None, "usage hung": "hang", "usage throttled": "throttle"}
SCENARIOS["usage healthy"] = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition instead of three")
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    repetitions = 1 if args.quick else 3
    seconds: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    cpu: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    failed: dict[str, int] = dict.fromkeys(SCENARIOS, 0)
    for _ in range(repetitions):
        for name, fault in SCENARIOS.items():
            result = jobs_polls_beside(fault, args.jobs, POLLS, LATENCY)
            seconds[name].extend(result.seconds[1:])
            cpu[name].extend(result.cpu_seconds[1:])
            failed[name] += result.ok.count(False)
    baseline = statistics.median(seconds["quota poll off"])
    cpu_baseline = statistics.median(cpu["quota poll off"])
    print(f"jobs poll of {args.jobs} jobs, {LATENCY * 1000:g} ms per answer, {repetitions}x")
    print(f"  median planned jobs poll, quota poll off: {baseline:.3f} s, {cpu_baseline:.3f} s CPU")
    for name in SCENARIOS:
        if name == "quota poll off":
            continue
        ratio = statistics.median(seconds[name]) / baseline
        figure(f"jobs poll time, {name} / quota poll off", ratio, "<= 1.1")
        cpu_ratio = statistics.median(cpu[name]) / cpu_baseline
        figure(f"process CPU per jobs poll, {name} / quota poll off", cpu_ratio, "<= 1.1")
    for name, count in failed.items():
        figure(f"failed jobs polls, {name}", count, "0", unit="")


if __name__ == "__main__":
    main()
