"""SIGHUP and POST /-/reload: a good new configuration replaces the running one, a bad one is
logged and changes nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from exporter.demo.simulator import ApiSimulator
from tests.integration.test_integration import ENV, JOBS, KEY_ID, SECRET, record
from tests.support.exporter_process import ExporterProcess

BAD_LINE = "poll.interval: expected a duration like 30s, 5m, 1h or 2d, got 1"


@pytest.fixture(scope="module")
def simulator() -> Iterator[ApiSimulator]:
    sim = ApiSimulator(JOBS, credentials={KEY_ID: (SECRET, None)}).start()
    yield sim
    sim.stop()


def config_text(simulator: ApiSimulator, account: str, interval: str = "'30s'") -> str:
    return (
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
        f"    labels: {{account: {account}}}\n"
        f"poll: {{interval: {interval}, window: 1d}}\n"
    )


def wait_for_line(process: ExporterProcess, line: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = process.get("/metrics").text
        if line in text.splitlines():
            return text
        assert time.monotonic() < deadline, f"never saw {line!r} in /metrics"
        time.sleep(0.05)


def test_sighup_and_post_reload(simulator: ApiSimulator, tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(config_text(simulator, "a"))
    process = ExporterProcess("--config", str(path), "--web.enable-lifecycle", env=ENV)
    try:
        process.wait_until("/ready")
        wait_for_line(process, 'maxcompute_up{account="a",region="cn-hangzhou"} 1.0')
        assert (
            "maxcompute_exporter_config_last_reload_successful 1.0"
            in process.get("/metrics").text.splitlines()
        )

        # A good new configuration: the new target is polled, the old one is gone.
        path.write_text(config_text(simulator, "b"))
        process.process.send_signal(signal.SIGHUP)
        text = wait_for_line(process, 'maxcompute_up{account="b",region="cn-hangzhou"} 1.0')
        assert 'account="a"' not in text

        # A bad one: the running configuration stays, the gauge says so.
        path.write_text(config_text(simulator, "c", interval="1"))
        process.process.send_signal(signal.SIGHUP)
        text = wait_for_line(process, "maxcompute_exporter_config_last_reload_successful 0.0")
        assert 'maxcompute_up{account="b",region="cn-hangzhou"} 1.0' in text.splitlines()
        answer = httpx.post(process.base + "/-/reload", timeout=10)
        assert (answer.status_code, answer.text) == (500, f"failed to reload config: {BAD_LINE}\n")
        assert httpx.get(process.base + "/-/reload").status_code == 405

        # Fixed, and reloaded over HTTP.
        path.write_text(config_text(simulator, "d"))
        answer = httpx.post(process.base + "/-/reload", timeout=10)
        assert (answer.status_code, answer.text) == (200, "configuration reloaded\n")
        text = wait_for_line(process, 'maxcompute_up{account="d",region="cn-hangzhou"} 1.0')
        assert "maxcompute_exporter_config_last_reload_successful 1.0" in text.splitlines()
        stamp = [
            line
            for line in text.splitlines()
            if line.startswith("maxcompute_exporter_config_last_reload_success_timestamp_seconds ")
        ]
        assert abs(float(stamp[0].split()[1]) - time.time()) < 30
    finally:
        code, stderr = process.stop()
    assert code == 0
    error_lines = [line for line in stderr.splitlines() if "level=error" in line]
    assert len(error_lines) == 2  # the SIGHUP, then the POST
    assert error_lines[0].split(" ", 1)[1] == error_lines[1].split(" ", 1)[1]
    assert error_lines[0].endswith(
        'level=error logger=exporter.reload msg="reloading the configuration failed: keeping the'
        f' running one" error="{BAD_LINE}"'
    )
    assert stderr.count('msg="configuration reloaded" targets=1') == 2
    assert "Traceback" not in stderr


def reload_stamp(process: ExporterProcess) -> float:
    name = "maxcompute_exporter_config_last_reload_success_timestamp_seconds "
    (line,) = [x for x in process.get("/metrics").text.splitlines() if x.startswith(name)]
    return float(line.split()[1])


def test_sighup_in_demo_mode_keeps_the_demo_running() -> None:
    process = ExporterProcess("--demo")
    try:
        process.wait_until("/ready")
        started = reload_stamp(process)
        process.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while reload_stamp(process) == started:
            assert time.monotonic() < deadline, "the reload never happened"
            time.sleep(0.05)
        text = process.get("/metrics").text.splitlines()
        assert 'maxcompute_up{region="cn-hangzhou"} 1.0' in text
        assert "maxcompute_exporter_config_last_reload_successful 1.0" in text
    finally:
        code, stderr = process.stop()
    assert code == 0
    assert 'msg="configuration reloaded: unchanged"' in stderr


def web_config_text(password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"basic_auth_users:\n  prometheus: '{hashed}'\n"


def test_sighup_reads_the_web_config_again(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(web_config_text("old-password"))
    process = ExporterProcess("--demo", "--web.config.file", str(web), "--web.enable-lifecycle")
    try:
        process.wait_until("/healthz")
        assert process.get("/metrics", auth=("prometheus", "old-password")).status_code == 200
        web.write_text(web_config_text("new-password"))
        process.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while process.get("/metrics", auth=("prometheus", "new-password")).status_code != 200:
            assert time.monotonic() < deadline, "the new password was never taken"
            time.sleep(0.05)
        assert process.get("/metrics", auth=("prometheus", "old-password")).status_code == 401

        # A broken web config keeps the running one, and says so.
        web.write_text("basic_auth_users:\n  prometheus: '$2y$10$short'\n")
        answer = httpx.post(
            process.base + "/-/reload", auth=("prometheus", "new-password"), timeout=10
        )
        assert (answer.status_code, answer.text) == (
            500,
            "failed to reload config: web config: basic_auth_users.prometheus: expected a"
            " bcrypt hash like htpasswd -nbB makes ($2y$10$ and 53 more characters)\n",
        )
        metrics = process.get("/metrics", auth=("prometheus", "new-password"))
        assert metrics.status_code == 200
        assert "maxcompute_exporter_config_last_reload_successful 0.0" in metrics.text
    finally:
        code, stderr = process.stop()
    assert code == 0 and "Traceback" not in stderr


def two_targets(
    simulator: ApiSimulator, changed_quotas: str = ", quotas: [etl, adhoc]", timeout: str = "10s"
) -> str:
    # The second target reads a subset of the first one's jobs (the same jobs twice are refused).
    return (
        f"targets:\n"
        f"  - {{region: cn-hangzhou, endpoint: '{simulator.url}', labels: {{account: keep}}}}\n"
        f"  - {{region: cn-hangzhou, endpoint: '{simulator.url}', labels: {{account: change}}"
        f"{changed_quotas}}}\n"
        f"poll: {{interval: 1h, timeout: {timeout}, window: 1d}}\n"
    )


def test_a_reload_makes_a_baseline_of_the_changed_target_only(tmp_path: Path) -> None:
    # Polls an hour apart: the only polls are the first at start and those after the reload.
    sim = ApiSimulator(list(JOBS), credentials={KEY_ID: (SECRET, None)}).start()
    path = tmp_path / "config.yml"
    path.write_text(two_targets(sim))
    process = ExporterProcess("--config", str(path), env=ENV)
    started = (
        'maxcompute_jobs_started_total{account="%s",project="sales",quota="etl",'
        'region="cn-hangzhou"}'
    )
    try:
        process.wait_until("/ready")
        wait_for_line(process, started % "keep" + " 0.0")
        # The next poll (the reload's) a whole second after this one, so consumption has time
        # to integrate over.
        first_poll = time.time()
        while time.time() < int(first_poll) + 2:
            time.sleep(0.05)
        # A job starts; then the second target's quotas filter changes and the exporter reloads.
        # The first target stays the same target, polled with another timeout: so it polls at
        # once (polled as before, it would keep its schedule, its next poll an hour on).
        sim.set_jobs([*JOBS, record("new-1", "sales", "etl", 0.1, 0.1, 0.5, 30, 5)])
        path.write_text(two_targets(sim, ", quotas: [etl]", timeout="9s"))
        process.process.send_signal(signal.SIGHUP)
        # The same target's first poll after the reload is compared with its last one before:
        # the new job started. The changed target's is a baseline: nothing counted.
        text = wait_for_line(process, started % "keep" + " 1.0")
        text = wait_for_line(process, started % "change" + " 0.0")
        assert 'maxcompute_jobs_finished_total{account="change"' in text
        # Consumption alike: the kept target integrates across the reload, the changed one
        # starts from a baseline.
        share_seconds = {
            line.split("{", 1)[1].split(",", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("maxcompute_cu_share_seconds_total{")
            and 'project="sales",quota="etl"' in line
        }
        assert share_seconds['account="change"'] == 0
        assert share_seconds['account="keep"'] >= 0.625 * 2  # 40 jobs of 1/64, 2 s or more
        assert (
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith('maxcompute_jobs_started_total{account="change"')
            )
            == 0
        )
    finally:
        process.stop()
        sim.stop()
