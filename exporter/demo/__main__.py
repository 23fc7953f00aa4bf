"""``python -m exporter.demo``: the GetRunningJobs simulator on its own, from the command line.

    python -m exporter.demo --listen 127.0.0.1:18080 --demo-jobs 300

Apart from ``simulator`` so that the server does not import the workloads built on it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace

from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, ApiSimulator
from exporter.demo.simulator_state import Faults, JobSource
from exporter.demo.workload import phased_workload


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.demo", description="A local GetRunningJobs simulator."
    )
    parser.add_argument("--listen", default="127.0.0.1:18080", help="host:port")
    parser.add_argument("--jobs", help="JSON file with a list of job records to serve")
    parser.add_argument(
        "--demo-jobs", type=int, default=120, help="background jobs of the phased demo workload"
    )
    parser.add_argument(
        "--running", type=int, help="serve a list of this many running jobs that moves (churn)"
    )
    parser.add_argument("--finish-rate", type=float, default=5.0, help="with --running: jobs/s")
    parser.add_argument("--submit-rate", type=float, default=5.0, help="with --running: jobs/s")
    parser.add_argument("--descending", action="store_true", help="with --running: newest first")
    parser.add_argument(
        "--burst", type=int, default=0, help="with --running: jobs submitted in one second"
    )
    parser.add_argument(
        "--burst-owners", type=int, default=20, help="with --burst: owners per quota it spans"
    )
    parser.add_argument(
        "--queued-rate", type=float, default=0.0, help="with --burst: its queued jobs starting/s"
    )
    parser.add_argument(
        "--late-starts",
        type=float,
        default=0.0,
        help="with --running: share of submissions that wait for CUs and start up to 2 min later",
    )
    parser.add_argument(
        "--rate-limit", type=float, help="answer Throttling.User above this many requests/s"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per response")
    parser.add_argument("--throttle", type=float, default=0.0)
    parser.add_argument("--server-error", type=float, default=0.0)
    parser.add_argument("--disconnect", type=float, default=0.0)
    parser.add_argument("--malformed", type=float, default=0.0)
    parser.add_argument("--access-key-id", default=DEMO_ACCESS_KEY_ID)
    parser.add_argument("--access-key-secret", default=DEMO_ACCESS_KEY_SECRET)
    return parser


def job_source(args: argparse.Namespace) -> JobSource | list[dict]:
    """What the flags ask to serve: a file's jobs, a churning list, or the phased demo."""
    if args.jobs:
        with open(args.jobs, encoding="utf-8") as handle:
            return json.load(handle)
    if args.running is not None:
        from exporter.demo.churn import Churn, ChurningJobs

        churn = Churn(
            args.finish_rate,
            args.submit_rate,
            descending=args.descending,
            queued_per_second=args.queued_rate,
            late_share=args.late_starts,
        )
        now = time.time()
        jobs = ChurningJobs(args.running - args.burst, churn, start=now)
        if args.burst:
            jobs.schedulers_burst(int(now) - 600, args.burst, args.burst_owners)
        return jobs
    return phased_workload(time.time(), jobs_per_quota=max(1, args.demo_jobs // 3))


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    faults = replace(
        Faults(),
        latency=args.latency,
        throttle=args.throttle,
        server_error=args.server_error,
        disconnect=args.disconnect,
        malformed=args.malformed,
    )
    simulator = ApiSimulator(
        job_source(args),
        credentials={args.access_key_id: (args.access_key_secret, None)},
        faults=faults,
        address=(host or "127.0.0.1", int(port)),
        rate_limit=args.rate_limit,
    )
    print(f"GetRunningJobs simulator on {simulator.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        simulator.serve_forever()


if __name__ == "__main__":
    main()
