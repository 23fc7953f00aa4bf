"""What a user sees on a first run with a mistake: the exact line and exit status of each."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from exporter.config import PollSettings
from tests.support.exporter_process import run_exporter
from tests.support.tools import free_port

ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tFirstRun",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "first-run-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "",
}
TIMESTAMP = re.compile(r"^ts=\S+ ")


def log_lines(stderr: str) -> list[str]:
    """The log lines without their timestamps."""
    return [TIMESTAMP.sub("", line) for line in stderr.splitlines()]


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_misspelt_flag_is_refused_not_taken_as_an_abbreviation() -> None:
    result = run_exporter("--web.listen-addres", ":1", "--check-config")
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: error: unrecognized arguments: --web.listen-addres :1"
        " (did you mean --web.listen-address? see --help)\n"
    )


def test_a_prefix_of_a_flag_is_refused() -> None:
    result = run_exporter("--vers")
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: error: unrecognized arguments: --vers"
        " (did you mean --version? see --help)\n"
    )


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("hangzhou", "maxcompute.hangzhou.aliyuncs.com"),
        ("cn-hangzou", "maxcompute.cn-hangzou.aliyuncs.com"),
    ],
)
def test_an_unknown_region_is_a_warning_with_the_nearest_name(
    tmp_path: Path, region: str, endpoint: str
) -> None:
    path = config_file(tmp_path, f"targets:\n  - region: {region}\n")
    result = run_exporter("--config", path, "--check-config", env=ENV)
    assert result.returncode == 0
    assert result.stdout.startswith("configuration OK: 1 target(s)\n")
    assert log_lines(result.stderr) == [
        f"level=warning logger=exporter msg=\"targets[0].region: '{region}' is not a known"
        f" MaxCompute region (did you mean cn-hangzhou?); polling https://{endpoint} as"
        ' configured"'
    ]


def test_a_secret_written_as_a_number_says_to_quote_it(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "targets:\n  - region: cn-hangzhou\n    credentials:\n"
        "      access_key_id: LTAI5tFile\n      access_key_secret: 12345\n",
    )
    result = run_exporter("--config", path, "--check-config", env=ENV)
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: config error: targets[0].credentials.access_key_secret: expected a"
        " non-empty string, got a number: put it in quotes so YAML reads it as text\n"
    )
    assert "12345" not in result.stdout + result.stderr


def test_an_interval_below_the_default_timeout_names_the_default(tmp_path: Path) -> None:
    path = config_file(tmp_path, "targets: [{region: cn-hangzhou}]\npoll: {interval: 1s}\n")
    result = run_exporter("--config", path, "--check-config", env=ENV)
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: config error: poll.timeout: expected less than poll.interval (1s),"
        " got the default 10s: set poll.timeout below 1s or raise poll.interval\n"
    )


def test_a_week_long_window_says_what_it_costs(tmp_path: Path) -> None:
    path = config_file(tmp_path, "targets: [{region: cn-hangzhou}]\npoll: {window: 7d}\n")
    result = run_exporter("--config", path, "--check-config", env=ENV)
    assert result.returncode == 0
    assert log_lines(result.stderr) == [
        'level=warning logger=exporter msg="poll.window: 7d makes every poll read every running'
        " job submitted in the last 7d, at least one request per 20 of them, every 1m: 1000"
        " such jobs cost 50 requests a poll, 3000 an hour. Keep it over 1d only if jobs run"
        ' that long"'
    ]


def test_check_config_prints_the_effective_settings(tmp_path: Path) -> None:
    path = config_file(tmp_path, "targets: [{region: cn-hangzhou}]\npoll: {interval: 2m}\n")
    result = run_exporter("--config", path, "--check-config", env=ENV)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "configuration OK: 1 target(s)\n"
        "# effective settings (defaults filled in, secrets masked)\n"
        "targets:\n"
        "- region: cn-hangzhou\n"
        "  endpoint: https://maxcompute.cn-hangzhou.aliyuncs.com\n"
        "  quotas: []\n"
        "  owners: []\n"
        "  labels: {}\n"
        "  credentials:\n"
        "    access_key_id: LTAI****\n"
        "    access_key_secret: <secret>\n"
        "poll:\n"
        "  interval: 2m\n"
        "  window: 1d\n"
        "  page_concurrency: 32\n"
        "  timeout: 10s\n"
        "  retries: 3\n"
        "  retry_backoff: 500ms\n"
        f"  rate_limit: {PollSettings().rate_limit}\n"
        "  deadline: 1m48s\n"
        "  max_staleness: 6m\n"
        "metrics:\n"
        "  top_jobs: 0\n"
        "  max_projects_per_quota: 500\n"
        "  max_quotas_per_target: 100\n"
        "  job_changes: true\n"
        "  owner_consumption: false\n"
        "  max_owners_per_quota: 20\n"
        "  counter_retention: 1h\n"
        "quota_poll:\n"
        "  quotas: true\n"
        "  quotas_interval: 5m\n"
        "  usage: true\n"
        "  usage_interval: 1m\n"
    )


def test_a_refused_connection_names_host_and_cause_at_warning(tmp_path: Path) -> None:
    port = free_port()
    path = config_file(
        tmp_path,
        f"targets:\n  - region: cn-hangzhou\n    endpoint: http://127.0.0.1:{port}\n"
        "poll: {retries: 0}\n",
    )
    result = run_exporter("--config", path, "--once", env=ENV)
    assert result.returncode == 1
    # The quota poll fails on its own, and says so once (its usage part asks nothing yet).
    assert sorted(log_lines(result.stderr)) == [
        'level=warning logger=exporter.poller msg="poll failed" target=cn-hangzhou'
        f' error="GetRunningJobs connection failed: 127.0.0.1:{port}: connection refused:'
        ' nothing listens on that port"',
        'level=warning logger=exporter.quota_poller msg="ListQuotas poll failed"'
        f' target=cn-hangzhou error="ListQuotas connection failed: 127.0.0.1:{port}:'
        ' connection refused: nothing listens on that port"',
    ]


def test_an_unresolvable_endpoint_names_host_and_cause_at_warning(tmp_path: Path) -> None:
    host = "maxcompute.cn-hangzou.invalid"  # RFC 6761: never resolves
    with pytest.raises(socket.gaierror) as caught:
        socket.getaddrinfo(host, 443)
    resolver_says = caught.value.strerror  # differs offline and online
    path = config_file(
        tmp_path,
        f"targets:\n  - region: cn-hangzhou\n    endpoint: https://{host}\npoll: {{retries: 0}}\n",
    )
    result = run_exporter("--config", path, "--once", env=ENV)
    assert result.returncode == 1
    assert sorted(log_lines(result.stderr)) == [
        'level=warning logger=exporter.poller msg="poll failed" target=cn-hangzhou'
        f' error="GetRunningJobs connection failed: {host}: DNS lookup failed: {resolver_says}'
        ' (check the region or endpoint)"',
        'level=warning logger=exporter.quota_poller msg="ListQuotas poll failed"'
        f' target=cn-hangzhou error="ListQuotas connection failed: {host}: DNS lookup failed:'
        f' {resolver_says} (check the region or endpoint)"',
    ]
