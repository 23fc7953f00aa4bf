"""--demo.speed: the demo's clock, its workload at speed, and the flag's bad values."""

from __future__ import annotations

import pytest

from exporter.demo.demo_time import DemoClock
from exporter.demo.workload import faults_at, phased_workload
from tests.support.exporter_process import run_exporter

START = 1_800_000_000


def test_demo_time_runs_speed_times_faster_and_maps_back():
    clock = DemoClock(START, 12.0)
    assert clock.demo(START + 10) == START + 120
    assert clock.wall(START + 120) == START + 10
    assert clock.to_wall({"submittedAtTime": START - 3600, "runningAtTime": START + 120}) == {
        "submittedAtTime": START - 300,
        "runningAtTime": START + 10,
    }
    record = {"submittedAtTime": START, "runningAtTime": START + 5}
    assert DemoClock(START).to_wall(record) is record


def test_the_workload_at_speed_is_the_workload_at_its_demo_time_in_wall_seconds():
    slow, fast = phased_workload(START), phased_workload(START, speed=10.0)
    # 60 wall seconds at speed 10 are the demo's 600th second: the same jobs, their times
    # mapped back (a job stuck at 0 for over an hour of demo time: over 6 wall minutes).
    demo, wall = slow(START + 600), fast(START + 60)
    assert [r["instanceId"] for r in demo] == [r["instanceId"] for r in wall]
    for at_demo, at_wall in zip(demo, wall, strict=True):
        assert at_wall["cuSnapshot"] == at_demo["cuSnapshot"]
        assert at_wall["runningAtTime"] == round(START + (at_demo["runningAtTime"] - START) / 10)
    stuck = [r for r in fast(START + 10) if "stuck" in r["instanceId"]]
    assert len(stuck) == 1 and START + 10 - stuck[0]["runningAtTime"] == 376  # 3760 / 10
    assert faults_at(600).server_error == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--demo", "--demo.speed", "0.5"), "--demo.speed: expected a number from 1 to 100"),
        (("--demo", "--demo.speed", "1000"), "--demo.speed: expected a number from 1 to 100"),
        (("--config", "x.yaml", "--demo.speed", "10"), "--demo.speed: only with --demo"),
    ],
)
def test_bad_demo_speed_exits_2_naming_the_flag(args, message):
    result = run_exporter(*args, "--check-config")
    assert result.returncode == 2
    assert result.stderr.strip() == f"maxcompute-exporter: {message}"
