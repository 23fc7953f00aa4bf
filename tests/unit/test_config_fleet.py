"""A fleet in one file: per-target poll settings, series bounds, duplicates and collisions."""

from __future__ import annotations

import pytest
import yaml

from exporter.config import ConfigError, MetricsSettings, PollSettings, parse_config
from exporter.config.advice import config_warnings
from exporter.config.fleet import FleetConflicts
from tests.support.exporter_process import run_exporter

ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret-value",
}
KEY_B = "{access_key_id: LTAIbbbb, access_key_secret: other-secret}"


def parse(text: str):
    return parse_config(yaml.safe_load(text), ENV)


def test_a_target_poll_block_overrides_the_top_level_one_key_by_key() -> None:
    config = parse(
        """
        poll: {interval: 30s, timeout: 5s, rate_limit: 200}
        targets:
          - region: cn-hangzhou
          - region: cn-beijing
            poll: {interval: 5m, deadline: 2m, page_concurrency: 8}
        """
    )
    first, second = config.targets
    assert first.poll is None
    assert config.poll_for(first) == PollSettings(interval=30.0, timeout=5.0, rate_limit=200.0)
    assert config.poll_for(second) == PollSettings(
        interval=300.0, timeout=5.0, rate_limit=200.0, deadline=120.0, page_concurrency=8
    )
    # Derived values follow the target's own interval.
    assert config.poll_for(second).effective_max_staleness == 900.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "targets: [{region: cn-beijing, poll: {intervall: 5m}}]",
            "targets[0].poll.intervall: unknown key (known keys: deadline, interval, "
            "max_staleness, page_concurrency, rate_limit, retries, retry_backoff, timeout, "
            "window)",
        ),
        (
            "{poll: {timeout: 20s}, targets: [{region: cn-beijing, poll: {interval: 15s}}]}",
            "targets[0].poll.timeout: expected less than targets[0].poll.interval (15s), got '20s'",
        ),
        (
            "targets: [{region: cn-beijing, poll: {rate_limit: 0}}]",
            "targets[0].poll.rate_limit: expected requests per second, above 0, got 0",
        ),
        (
            "targets: [{region: cn-beijing, poll: [interval]}]",
            "targets[0].poll: expected a mapping, got a list",
        ),
        (
            "{metrics: {max_projects_per_quota: 0}, targets: [{region: cn-beijing}]}",
            "metrics.max_projects_per_quota: expected a whole number from 1 to 10000, got 0",
        ),
        (
            "{metrics: {max_quotas_per_target: 10001}, targets: [{region: cn-beijing}]}",
            "metrics.max_quotas_per_target: expected a whole number from 1 to 10000, got 10001",
        ),
    ],
)
def test_each_fleet_mistake_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_series_bounds_default_to_500_projects_per_quota_and_100_quotas() -> None:
    assert parse("targets: [{region: cn-beijing}]").metrics == MetricsSettings(
        top_jobs=0, max_projects_per_quota=500, max_quotas_per_target=100
    )
    config = parse(
        "{metrics: {max_projects_per_quota: 100, max_quotas_per_target: 7}, "
        "targets: [{region: cn-beijing}]}"
    )
    assert config.metrics == MetricsSettings(max_projects_per_quota=100, max_quotas_per_target=7)


def test_duplicates_and_colliding_labels_are_one_line_each() -> None:
    with pytest.raises(FleetConflicts) as caught:
        parse(
            f"""
            targets:
              - {{region: cn-hangzhou, labels: {{account: prod}}, quotas: [a, b]}}
              - {{region: cn-hangzhou, labels: {{account: dup}}, quotas: [b, a]}}
              - {{region: cn-beijing, labels: {{account: ''}}}}
              - {{region: cn-beijing, credentials: {KEY_B}}}
            """
        )
    assert caught.value.lines == (
        "targets[3]: expected region and labels different from targets[2] (their series "
        "would be the same; add a label such as account to tell them apart)",
        "targets[1]: expected a target different from targets[0] (same region, endpoint, "
        "quotas, owners and credentials: the same jobs polled twice; remove one)",
    )


def test_the_same_jobs_read_with_other_credentials_is_a_warning() -> None:
    config = parse(
        f"""
        targets:
          - {{region: cn-hangzhou, labels: {{account: a}}}}
          - {{region: cn-hangzhou, labels: {{account: b}}, credentials: {KEY_B}}}
          - {{region: cn-hangzhou, labels: {{account: c}}, endpoint: 'http://127.0.0.1:1'}}
        """
    )
    assert config_warnings(config) == (
        "targets[1]: same region, endpoint, quotas and owners as targets[0] with other "
        "credentials: if both are the same account, its jobs are polled and counted twice",
    )


def test_check_config_prints_each_conflict_and_exits_2(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n"
        "  - {region: cn-hangzhou, labels: {account: a}}\n"
        "  - {region: cn-hangzhou, labels: {account: b}}\n"
        "  - {region: cn-hangzhou, labels: {account: a}, quotas: [q]}\n"
    )
    done = run_exporter("--config", str(path), "--check-config", env=ENV)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "maxcompute-exporter: config error: targets[2]: expected region and labels different "
        "from targets[0] (their series would be the same; add a label such as account to tell "
        "them apart)",
        "maxcompute-exporter: config error: targets[1]: expected a target different from "
        "targets[0] (same region, endpoint, quotas, owners and credentials: the same jobs "
        "polled twice; remove one)",
    ]
