"""The exporter as a subprocess against the simulator over real HTTP: exact values on /metrics."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.demo.simulator import ApiSimulator, Faults
from tests.support.exporter_process import ExporterProcess, run_exporter
from tests.support.exposition import values
from tests.support.jobs import job_record
from tests.support.metric_contract import (
    CONTRACT_METRICS,
    OWNER_CONSUMPTION_METRICS,
    PER_JOB_METRICS,
    QUOTA_METRICS,
)
from tests.support.tools import free_port, promtool
from tests.support.waiting import eventually

NOW = int(time.time())
KEY_ID, SECRET = "LTAIintegration", "integration-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}


def record(instance_id, project, quota, cu, memory, progress, queued, started_ago) -> dict:
    """A job that waited ``queued`` seconds and started ``started_ago`` seconds ago."""
    started = NOW - started_ago
    return job_record(
        instance_id,
        project=project,
        quota=quota,
        cu=cu,
        memory=memory,
        progress=progress,
        submitted=started - queued,
        running=started,
    )


# 45 jobs over three pages: 40 in (etl, sales), 3 in (etl, ads), 1 in (adhoc, sales), one bad.
JOBS = (
    [
        record(f"sales-{n:02d}", "sales", "etl", 0.015625, 0.0078125, 0.5, 60, 600 - n)
        for n in range(40)
    ]
    + [
        record("ads-1", "ads", "etl", 0.125, 0.25, 0.0, 30, 1200),
        record("ads-2", "ads", "etl", 0.125, 0.25, 0.25, 300, 900),
        record("ads-3", "ads", "etl", 0.0625, 0.125, 0.5, 0, 100),
    ]
    + [record("adhoc-1", "sales", "adhoc", 0.5, 0.75, 2.0, 10, 50)]
    + [{**record("broken", "ads", "etl", 0.1, 0.1, 0.1, 0, 10), "cuSnapshot": None}]
)


@pytest.fixture(scope="module")
def simulator() -> Iterator[ApiSimulator]:
    sim = ApiSimulator(JOBS, credentials={KEY_ID: (SECRET, None)}).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def config_file(simulator: ApiSimulator, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
        "    labels: {account: test}\n"
        "poll:\n  interval: 30s\n  window: 1h\n  page_concurrency: 2\n  timeout: 5s\n"
    )
    return path


@pytest.fixture(scope="module")
def exporter(config_file: Path) -> Iterator[ExporterProcess]:
    process = ExporterProcess("--config", str(config_file), env=ENV)
    process.wait_until("/ready")
    yield process
    code, _ = process.stop()
    assert code == 0


def key(name: str, **labels: str) -> tuple:
    return (name, *sorted({"region": "cn-hangzhou", "account": "test", **labels}.items()))


def test_metrics_show_exact_values_for_a_known_job_set(exporter: ExporterProcess) -> None:
    response = exporter.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = values(response.text)
    sales = {"quota": "etl", "project": "sales"}
    ads = {"quota": "etl", "project": "ads"}
    adhoc = {"quota": "adhoc", "project": "sales"}
    expected = {
        key("maxcompute_running_jobs", **sales): 40,
        key("maxcompute_running_jobs", **ads): 3,
        key("maxcompute_running_jobs", **adhoc): 1,
        key("maxcompute_running_jobs_cu_ratio", **sales): 0.625,
        key("maxcompute_running_jobs_cu_ratio", **ads): 0.3125,
        key("maxcompute_running_jobs_cu_ratio", **adhoc): 0.5,
        key("maxcompute_running_jobs_memory_ratio", **sales): 0.3125,
        key("maxcompute_running_jobs_memory_ratio", **ads): 0.625,
        key("maxcompute_running_jobs_progress_sum_ratio", **sales): 20.0,
        key("maxcompute_running_jobs_progress_sum_ratio", **ads): 0.75,
        key("maxcompute_running_jobs_progress_sum_ratio", **adhoc): 1.0,
        key("maxcompute_running_jobs_oldest_start_timestamp_seconds", **sales): NOW - 600,
        key("maxcompute_running_jobs_oldest_start_timestamp_seconds", **ads): NOW - 1200,
        key("maxcompute_running_jobs_max_queue_seconds", **sales): 60,
        key("maxcompute_running_jobs_max_queue_seconds", **ads): 300,
        key("maxcompute_running_jobs_max_queue_seconds", **adhoc): 10,
        key("maxcompute_running_jobs_zero_progress", **sales): 0,
        key("maxcompute_running_jobs_zero_progress", **ads): 1,
        key("maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds", **ads): NOW
        - 1200,
        key("maxcompute_up"): 1,
        key("maxcompute_exporter_invalid_jobs_total"): 1,
        key("maxcompute_exporter_progress_out_of_range_total"): 1,
        key("maxcompute_exporter_poll_errors_total", reason="auth"): 0,
        key("maxcompute_exporter_poll_duration_seconds_count"): 1,
        ("maxcompute_exporter_build_info", ("version", "0.1.0")): 1,
    }
    for name, value in expected.items():
        assert got.get(name) == value, name
    requests = got[key("maxcompute_exporter_last_poll_requests")]
    assert got[key("maxcompute_exporter_api_requests_total", code="200")] == requests
    # Every name the rules and dashboard use (the per-job view is off here; this simulator
    # serves no quotas: tests/integration/test_quota_poll.py shows those series; the owner
    # view is off by default).
    off = PER_JOB_METRICS | QUOTA_METRICS | OWNER_CONSUMPTION_METRICS
    assert {k[0] for k in got} >= CONTRACT_METRICS - off
    assert not {k[0] for k in got} & (PER_JOB_METRICS | OWNER_CONSUMPTION_METRICS)
    job_series = {k for k in got if k[0] == "maxcompute_running_jobs"}
    assert len(job_series) == 3
    assert (
        key("maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds", **sales)
        not in got
    )
    assert abs(got[key("maxcompute_exporter_last_success_timestamp_seconds")] - time.time()) < 30
    assert KEY_ID not in response.text and SECRET not in response.text


def test_promtool_accepts_the_exposition(exporter: ExporterProcess) -> None:
    text = exporter.get("/metrics").text
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_landing_health_ready_and_gzip(exporter: ExporterProcess) -> None:
    landing = exporter.get("/")
    assert landing.status_code == 200
    assert '<a href="/metrics">' in landing.text
    assert exporter.get("/healthz").text == "ok\n"
    assert exporter.get("/ready").status_code == 200
    assert exporter.get("/nope").status_code == 404
    raw = exporter.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert "maxcompute_running_jobs{" in raw.text  # httpx decodes it


def test_logs_never_hold_the_secret(config_file: Path) -> None:
    result = run_exporter("--config", str(config_file), "--once", "--log.level", "debug", env=ENV)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "maxcompute_running_jobs{" in result.stdout


def test_once_exits_1_when_a_poll_fails(config_file: Path) -> None:
    result = run_exporter(
        "--config",
        str(config_file),
        "--once",
        env={
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-secret-xyz",
        },
    )
    assert result.returncode == 1
    assert 'maxcompute_up{account="test",region="cn-hangzhou"} 0.0' in result.stdout
    assert "errorCode=SignatureDoesNotMatch" in result.stderr
    assert "wrong-secret-xyz" not in result.stderr + result.stdout


def test_ready_is_503_until_the_first_good_poll(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: http://127.0.0.1:{free_port()}\n"
    )
    process = ExporterProcess("--config", str(path), env=ENV)
    try:
        response = process.wait_until("/ready", status=503)
        assert response.text.startswith("not ready")
        metrics = process.get("/metrics").text
        assert 'maxcompute_up{region="cn-hangzhou"} 0.0' in metrics
    finally:
        code, _ = process.stop()
    assert code == 0


def test_sigterm_and_sigint_exit_0_promptly(config_file: Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        process = ExporterProcess("--config", str(config_file), env=ENV)
        process.wait_until("/healthz")
        started = time.monotonic()
        process.process.send_signal(signum)
        code = process.process.wait(10)
        assert code == 0
        assert time.monotonic() - started < 5


def test_listen_address_in_use_is_one_line_and_exit_1(
    exporter: ExporterProcess, config_file: Path
) -> None:
    result = run_exporter(
        "--config",
        str(config_file),
        "--web.listen-address",
        f"127.0.0.1:{exporter.port}",
        env=ENV,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"maxcompute-exporter: --web.listen-address: cannot listen on 127.0.0.1:{exporter.port}:"
        " Address already in use"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "maxcompute-exporter: --config: expected a YAML file (or --demo to try the exporter)"),
        (
            ("--web.listen-address", "nowhere"),
            "maxcompute-exporter: --web.listen-address: expected host:port or :port, got 'nowhere'",
        ),
        (
            ("--log.level", "loud"),
            "maxcompute-exporter: error: argument --log.level: invalid choice: 'loud' (choose from"
            " 'debug', 'error', 'info', 'warn') (see --help)",
        ),
        (
            ("--web.telemetry-path", "metrics"),
            "maxcompute-exporter: --web.telemetry-path: expected a path like /metrics",
        ),
        (
            ("--config", "/nonexistent.yaml"),
            "maxcompute-exporter: config error: --config: expected a readable file, got"
            " '/nonexistent.yaml'",
        ),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: tuple, message: str) -> None:
    result = run_exporter(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_check_config(config_file: Path, tmp_path: Path) -> None:
    ok = run_exporter("--config", str(config_file), "--check-config", env=ENV)
    assert ok.returncode == 0
    # The effective settings follow; tests/integration/test_first_run.py checks them line by line.
    assert ok.stdout.startswith("configuration OK: 1 target(s)\n# effective settings")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [{region: cn-hangzhou}]\npoll: {interval: soon}\n")
    result = run_exporter("--config", str(bad), "--check-config", env=ENV)
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: config error: poll.interval: expected a duration like 30s, 5m, 1h"
        " or 2d, got 'soon'\n"
    )


def test_version() -> None:
    result = run_exporter("--version")
    assert (result.returncode, result.stdout) == (0, "maxcompute-exporter 0.1.0\n")


def test_demo_once_shows_real_looking_metrics() -> None:
    result = run_exporter("--demo", "--once")
    assert result.returncode == 0, result.stderr
    got = values(result.stdout)
    quotas = {dict(k[1:])["quota"] for k in got if k[0] == "maxcompute_running_jobs"}
    assert quotas == {"etl_quota", "adhoc_quota", "ml_quota"}
    assert got[("maxcompute_up", ("region", "cn-hangzhou"))] == 1


def test_sigterm_cancels_a_poll_in_flight_and_exits_0_promptly(tmp_path: Path) -> None:
    slow = ApiSimulator(
        JOBS, credentials={KEY_ID: (SECRET, None)}, faults=Faults(latency=10.0)
    ).start()
    path = tmp_path / "config.yaml"
    path.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {slow.url}\n"
        "poll:\n  interval: 60s\n  timeout: 30s\n"
        "quota_poll:\n  quotas: false\n  usage: false\n"  # one request in flight: the poll's
    )
    try:
        process = ExporterProcess("--config", str(path), env=ENV)
        process.wait_until("/healthz")
        eventually("the first poll's request", lambda: slow.state.requests >= 1)
        assert slow.state.requests == 1  # the first poll is waiting on the API
        started = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        code = process.process.wait(10)
        stderr = process.log()
    finally:
        slow.stop()
    assert code == 0
    assert time.monotonic() - started < 3
    assert "Traceback" not in stderr
    assert 'msg="shutting down"' in stderr


def test_log_format_json_and_logfmt() -> None:
    result = run_exporter("--demo", "--once", "--log.format", "json")
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[0]["msg"] == "demo mode: polling the bundled simulator"
    assert lines[0]["level"] == "info"
    assert lines[0]["endpoint"].startswith("http://127.0.0.1:")
    plain = run_exporter("--demo", "--once")
    first = plain.stderr.splitlines()[0]
    assert ' level=info logger=exporter msg="demo mode: polling the bundled simulator" ' in first
    assert first.startswith("ts=")
