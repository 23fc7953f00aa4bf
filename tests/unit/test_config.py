"""Configuration: what a valid file gives, and the one-line error for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.config import (
    ConfigError,
    Credentials,
    MetricsSettings,
    PollSettings,
    load_config,
    parse_config,
    parse_duration,
)
from exporter.config.credential_model import CredentialSpec
from tests.support.tools import ROOT

ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret-value",
}


def parse(text: str, environ: dict | None = None):
    return parse_config(yaml.safe_load(text), ENV if environ is None else environ)


def test_example_config_is_valid_and_documents_the_defaults() -> None:
    config = load_config(ROOT / "config.example.yaml", ENV)
    first, second = config.targets
    assert first.region == "cn-hangzhou"
    assert first.endpoint == "https://maxcompute.cn-hangzhou.aliyuncs.com"
    assert first.quotas == ("etl_quota", "adhoc_quota")
    assert first.owners == ()
    assert first.labels == (("account", "prod"),)
    assert first.credentials == Credentials("LTAIenv", "env-secret-value", None)
    assert second.endpoint == "https://maxcompute.cn-shanghai.aliyuncs.com"
    assert config.poll == PollSettings()
    assert config.constant_label_names == ("account",)


def test_minimal_config_takes_defaults() -> None:
    config = parse("targets: [{region: cn-beijing}]")
    assert config.poll == PollSettings(
        interval=60,
        window=86400,
        page_concurrency=32,
        timeout=10,
        retries=3,
        retry_backoff=0.5,
        rate_limit=1000.0,
        deadline=None,
        max_staleness=None,
    )
    assert config.poll.effective_deadline == 54.0
    assert config.poll.effective_max_staleness == 180.0
    assert config.targets[0].labels == ()
    assert config.metrics == MetricsSettings(top_jobs=0, job_changes=True)
    assert config.metrics.queue_wait_buckets[0] == 1.0
    assert config.metrics.run_time_buckets[-1] == 86400.0


def test_jobs_over_time_keys() -> None:
    config = parse(
        "targets: [{region: cn-beijing}]\n"
        "metrics: {job_changes: false, queue_wait_buckets: [30, 5m, 1h],"
        " run_time_buckets: [0.5, 10m, 1h, 6h]}"
    )
    assert config.metrics.job_changes is False
    assert config.metrics.queue_wait_buckets == (30.0, 300.0, 3600.0)
    assert config.metrics.run_time_buckets == (0.5, 600.0, 3600.0, 21600.0)


def test_consumption_keys() -> None:
    default = parse("targets: [{region: cn-beijing}]")
    assert (default.metrics.owner_consumption, default.metrics.max_owners_per_quota) == (False, 20)
    config = parse(
        "targets: [{region: cn-beijing}]\n"
        "metrics: {owner_consumption: true, max_owners_per_quota: 5}"
    )
    assert (config.metrics.owner_consumption, config.metrics.max_owners_per_quota) == (True, 5)


def test_counter_retention_defaults_to_an_hour_or_ten_of_the_longest_interval() -> None:
    assert parse("targets: [{region: cn-beijing}]").counter_retention == 3600.0
    slow = "targets: [{region: cn-beijing}, {region: cn-shanghai, poll: {interval: 10m}}]"
    assert parse(slow).counter_retention == 6000.0
    config = parse(f"{slow}\nmetrics: {{counter_retention: 30m}}")
    assert (config.metrics.counter_retention, config.counter_retention) == (1800.0, 1800.0)


def test_a_counter_retention_shorter_than_three_intervals_is_refused() -> None:
    slow = "targets: [{region: cn-beijing}, {region: cn-shanghai, poll: {interval: 10m}}]"
    with pytest.raises(ConfigError) as caught:
        parse(f"{slow}\nmetrics: {{counter_retention: 29m}}")
    assert str(caught.value) == (
        "metrics.counter_retention: expected at least 30m (3 x the longest poll.interval), so "
        "a group missing from a poll or two keeps its counters, got '29m'"
    )
    with pytest.raises(ConfigError) as caught:
        parse("targets: [{region: cn-beijing}]\nmetrics: {counter_retention: 0s}")
    assert str(caught.value) == (
        "metrics.counter_retention: expected at least 3m (3 x the longest poll.interval), so a "
        "group missing from a poll or two keeps its counters, got '0s'"
    )


def test_fault_handling_keys() -> None:
    config = parse(
        "targets: [{region: cn-beijing}]\npoll: {interval: 30s, retries: 0, retry_backoff: 2s,"
        " rate_limit: 2.5, deadline: 20s, max_staleness: 10m}"
    )
    assert (config.poll.retries, config.poll.retry_backoff, config.poll.rate_limit) == (0, 2, 2.5)
    assert config.poll.effective_deadline == 20.0
    assert config.poll.effective_max_staleness == 600.0


def test_sts_token_from_environment() -> None:
    config = parse(
        "targets: [{region: cn-beijing}]", {**ENV, "ALIBABA_CLOUD_SECURITY_TOKEN": "tok"}
    )
    assert config.targets[0].credentials.security_token == "tok"


def test_credentials_in_the_file_win_over_the_environment() -> None:
    config = parse(
        "targets: [{region: cn-beijing, credentials: {access_key_id: LTAIfile,"
        " access_key_secret: file-secret}}]"
    )
    assert config.targets[0].credentials == Credentials("LTAIfile", "file-secret")


def test_endpoint_override_allows_http() -> None:
    config = parse("targets: [{region: cn-beijing, endpoint: 'http://127.0.0.1:8080/'}]")
    assert config.targets[0].endpoint == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration("poll.interval", text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "config: expected a mapping with a targets list (the file is empty)"),
        ("[1, 2]", "config: expected a mapping, got a list"),
        ("targets: []", "targets: expected a non-empty list of targets, got a list"),
        (
            "targets: [{region: cn-beijing}]\npolls: {}",
            "polls: unknown key (known keys: metrics, poll, quota_poll, targets)",
        ),
        (
            "targets: [{region: cn-beijing, quota: [a]}]",
            "targets[0].quota: unknown key (known keys: credentials, endpoint, labels, owners,"
            " poll, quotas, region)",
        ),
        (
            "targets: [{region: Hangzhou}]",
            "targets[0].region: expected a region id like cn-hangzhou, got 'Hangzhou'",
        ),
        ("targets: [{}]", "targets[0].region: expected a region id like cn-hangzhou"),
        (
            "targets: [{region: cn-beijing, endpoint: 'ftp://x'}]",
            "targets[0].endpoint: expected a URL like https://maxcompute.cn-hangzhou.aliyuncs.com,"
            " got 'ftp://x'",
        ),
        (
            "targets: [{region: cn-beijing, quotas: my_quota}]",
            "targets[0].quotas: expected a list of strings, got 'my_quota'",
        ),
        (
            "targets: [{region: cn-beijing, quotas: ['a,b']}]",
            "targets[0].quotas[0]: expected a name without a comma, got 'a,b'",
        ),
        (
            "targets: [{region: cn-beijing, owners: [1]}]",
            "targets[0].owners[0]: expected a non-empty string, got the number 1: put it in"
            " quotes so YAML reads it as text",
        ),
        (
            "targets: [{region: cn-beijing, owners: [no]}]",
            "targets[0].owners[0]: expected a non-empty string, got the boolean false: put it"
            " in quotes so YAML reads it as text",
        ),
        (
            "targets: [{region: cn-beijing, owners: ['']}]",
            "targets[0].owners[0]: expected a non-empty string, got ''",
        ),
        (
            "targets: [{region: cn-beijing, labels: {quota: x}}]",
            "targets[0].labels.quota: expected a label name the exporter does not set itself",
        ),
        (
            "targets: [{region: cn-beijing, labels: {'bad-name': x}}]",
            "targets[0].labels: expected label names matching [a-zA-Z_][a-zA-Z0-9_]*, got"
            " 'bad-name'",
        ),
        (
            "targets: [{region: cn-beijing, labels: {env: 1}}]",
            "targets[0].labels.env: expected a string (quote it in YAML), got 1",
        ),
        (
            "targets: [{region: cn-beijing}, {region: cn-beijing, quotas: [a]}]",
            "targets[1]: expected region and labels different from targets[0] (their series"
            " would be the same; add a label such as account to tell them apart)",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {interval: 60}",
            "poll.interval: expected a duration like 30s, 5m, 1h or 2d, got 60",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {interval: 1 minute}",
            "poll.interval: expected a duration like 30s, 5m, 1h or 2d, got '1 minute'",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {interval: 0s}",
            "poll.interval: expected at least 1s, got '0s'",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {timeout: 2m}",
            "poll.timeout: expected less than poll.interval (1m), got '2m'",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {interval: 1s}",
            "poll.timeout: expected less than poll.interval (1s), got the default 10s: set"
            " poll.timeout below 1s or raise poll.interval",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {page_concurrency: 0}",
            "poll.page_concurrency: expected a whole number from 1 to 64, got 0",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {page_concurrency: '4'}",
            "poll.page_concurrency: expected a whole number from 1 to 64, got '4'",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {jitter: 1s}",
            "poll.jitter: unknown key (known keys: deadline, interval, max_staleness,"
            " page_concurrency, rate_limit, retries, retry_backoff, timeout, window)",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {retries: 11}",
            "poll.retries: expected a whole number from 0 to 10, got 11",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {rate_limit: fast}",
            "poll.rate_limit: expected requests per second, a number above 0, got 'fast'",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {rate_limit: 0}",
            "poll.rate_limit: expected requests per second, above 0, got 0",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {interval: 60s, deadline: 60s}",
            "poll.deadline: expected at least poll.timeout and less than poll.interval, got '60s'",
        ),
        (
            "targets: [{region: cn-beijing}]\npoll: {interval: 60s, max_staleness: 30s}",
            "poll.max_staleness: expected at least poll.interval, got '30s'",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {job_changes: 'no'}",
            "metrics.job_changes: expected true or false, got 'no'",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {owner_consumption: 1}",
            "metrics.owner_consumption: expected true or false, got 1",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {max_owners_per_quota: 0}",
            "metrics.max_owners_per_quota: expected a whole number from 1 to 10000, got 0",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {queue_wait_buckets: []}",
            "metrics.queue_wait_buckets: expected a list of 1 to 30 increasing upper bounds in "
            "seconds, numbers or durations (e.g. [60, 10m, 1h]), got a list",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {queue_wait_buckets: 60}",
            "metrics.queue_wait_buckets: expected a list of 1 to 30 increasing upper bounds in "
            "seconds, numbers or durations (e.g. [60, 10m, 1h]), got 60",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {run_time_buckets: [10m, 5m]}",
            "metrics.run_time_buckets[1]: expected a bound above the one before it (600s), "
            "got '5m'",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {run_time_buckets: [60, 60]}",
            "metrics.run_time_buckets[1]: expected a bound above the one before it (60s), got 60",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {run_time_buckets: [0, 60]}",
            "metrics.run_time_buckets[0]: expected a bound above 0 and finite "
            "(+Inf is always added), got 0",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {run_time_buckets: [60, .inf]}",
            "metrics.run_time_buckets[1]: expected a bound above 0 and finite "
            "(+Inf is always added), got inf",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {run_time_buckets: [60, true]}",
            "metrics.run_time_buckets[1]: expected a number of seconds or a duration like 10m, "
            "got true",
        ),
        (
            "targets: [{region: cn-beijing}]\nmetrics: {run_time_buckets: [60, 1 hour]}",
            "metrics.run_time_buckets[1]: expected a duration like 30s, 5m, 1h or 2d, got '1 hour'",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_no_key_anywhere_leaves_the_target_to_the_default_chain() -> None:
    config = parse("targets: [{region: cn-beijing}]", {})
    assert config.targets[0].credentials == CredentialSpec("default")


def test_a_bad_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(
            "targets: [{region: cn-beijing, credentials: {access_key_id: LTAIx,"
            " access_key_secret: 12345678}}]"
        )
    assert str(caught.value) == (
        "targets[0].credentials.access_key_secret: expected a non-empty string, got a number:"
        " put it in quotes so YAML reads it as text"
    )
    assert "12345678" not in str(caught.value)


@pytest.mark.parametrize("value", ["''", "[s3cr3t]", "{a: s3cr3t}"])
def test_a_secret_of_the_wrong_shape_is_never_echoed(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(
            "targets: [{region: cn-beijing, credentials: {access_key_id: LTAIx,"
            f" access_key_secret: {value}}}}}]"
        )
    assert str(caught.value) == (
        "targets[0].credentials.access_key_secret: expected a non-empty string"
    )


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("targets:\n  - region: [cn-beijing\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert str(caught.value).startswith(f"{path}: expected valid YAML (parse error at line")


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("/nonexistent/config.yaml", ENV)
    assert str(caught.value) == "--config: expected a readable file, got '/nonexistent/config.yaml'"
