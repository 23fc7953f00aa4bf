"""Warnings for valid but doubtful settings, and the effective settings --check-config prints."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from exporter.config import PollSettings, format_duration, parse_config, parse_duration
from exporter.config.advice import (
    MAXCOMPUTE_REGIONS,
    config_warnings,
    nearest_region,
)
from exporter.config.effective import render_effective_settings
from tests.support.tools import ROOT

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tEnvKey", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cr3t"}


def parse(text: str):
    return parse_config(yaml.safe_load(text), ENV)


@pytest.mark.parametrize(
    ("region", "nearest"),
    [
        ("hangzhou", "cn-hangzhou"),
        ("cn-hangzou", "cn-hangzhou"),
        ("shanghai", "cn-shanghai"),
        ("eu-west", "eu-west-1"),
        ("ap-southeast-2", "ap-southeast-5"),
        ("moon", None),
    ],
)
def test_nearest_region(region: str, nearest: str | None) -> None:
    assert nearest_region(region) == nearest


def test_known_regions_and_the_default_window_draw_no_warning() -> None:
    text = "targets:\n" + "".join(
        f"  - {{region: {region}, labels: {{n: '{i}'}}}}\n"
        for i, region in enumerate(MAXCOMPUTE_REGIONS)
    )
    assert config_warnings(parse(text + "poll: {window: 24h}")) == ()


def test_unknown_regions_are_warned_with_the_nearest_name() -> None:
    config = parse("targets: [{region: hangzhou}, {region: moon, endpoint: 'http://127.0.0.1:1'}]")
    assert config_warnings(config) == (
        "targets[0].region: 'hangzhou' is not a known MaxCompute region (did you mean"
        " cn-hangzhou?); polling https://maxcompute.hangzhou.aliyuncs.com as configured",
        "targets[1].region: 'moon' is not a known MaxCompute region (see docs/configuration.md for"
        " the list); polling http://127.0.0.1:1 as configured",
    )


def test_a_long_window_says_what_it_costs() -> None:
    config = parse("targets: [{region: cn-beijing}]\npoll: {window: 7d, interval: 30s}")
    assert config_warnings(config) == (
        "poll.window: 7d makes every poll read every running job submitted in the last 7d, at"
        " least one request per 20 of them, every 30s: 1000 such jobs cost 50 requests a poll,"
        " 6000 an hour. Keep it over 1d only if jobs run that long",
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (54, "54s"), (60, "1m"), (5400, "1h30m"), (86400, "1d"),
     (9.9, "9s900ms")],
)  # fmt: skip
def test_format_duration_writes_what_parse_duration_reads(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration("x", text) == seconds


def test_effective_settings_fill_in_defaults_and_mask_secrets() -> None:
    config = parse(
        "targets: [{region: cn-beijing, quotas: [etl], labels: {account: prod}}]\n"
        "poll: {interval: 30s}"
    )
    assert render_effective_settings(config) == (
        "# effective settings (defaults filled in, secrets masked)\n"
        "targets:\n"
        "- region: cn-beijing\n"
        "  endpoint: https://maxcompute.cn-beijing.aliyuncs.com\n"
        "  quotas:\n"
        "  - etl\n"
        "  owners: []\n"
        "  labels:\n"
        "    account: prod\n"
        "  credentials:\n"
        "    access_key_id: LTAI****\n"
        "    access_key_secret: <secret>\n"
        "poll:\n"
        "  interval: 30s\n"
        "  window: 1d\n"
        "  page_concurrency: 32\n"
        "  timeout: 10s\n"
        "  retries: 3\n"
        "  retry_backoff: 500ms\n"
        f"  rate_limit: {PollSettings().rate_limit}\n"
        "  deadline: 27s\n"
        "  max_staleness: 1m30s\n"
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


def test_effective_settings_never_show_a_secret_or_token() -> None:
    config = parse_config(
        yaml.safe_load("targets: [{region: cn-beijing}]"),
        {**ENV, "ALIBABA_CLOUD_SECURITY_TOKEN": "sts-token-value"},
    )
    text = render_effective_settings(config)
    assert "s3cr3t" not in text and "sts-token-value" not in text and "5tEnvKey" not in text
    assert "    security_token: <secret>\n" in text


def test_effective_settings_read_back_to_the_same_settings() -> None:
    config = parse((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    document = yaml.safe_load(render_effective_settings(config))
    for target in document["targets"]:
        del target["credentials"]  # masked: the environment's are used again
    again = parse_config(document, ENV)
    assert again.targets == config.targets
    # The derived deadline and staleness come back written out, with the same values.
    assert replace(again.poll, deadline=None, max_staleness=None) == config.poll
    assert again.poll.effective_deadline == config.poll.effective_deadline
    assert again.poll.effective_max_staleness == config.poll.effective_max_staleness
