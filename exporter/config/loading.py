"""Load and validate the YAML configuration; every mistake is one line naming the key.

The result is immutable data: ``Config`` with its ``Target``s and ``PollSettings``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from exporter.config.credentials import parse_credentials
from exporter.config.files import read_bounded_file
from exporter.config.fleet import FleetConflicts, target_conflicts
from exporter.config.metrics_block import check_counter_retention, parse_metrics
from exporter.config.model import Config, PollSettings, QuotaPollSettings, Target
from exporter.config.uris import masked_uri
from exporter.config.values import (
    ConfigError,
    bounded_int,
    check_keys,
    constant_labels,
    format_duration,
    parse_duration,
    string_list,
)

REGION = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def endpoint_for(key: str, value: object, region: str) -> str:
    if value is None:
        return f"https://maxcompute.{region}.aliyuncs.com"
    expected = "a URL like https://maxcompute.cn-hangzhou.aliyuncs.com"
    if not isinstance(value, str):
        raise ConfigError(key, expected, value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        # Shown as where it points: its userinfo, path or query may hold a secret.
        raise ConfigError(key, expected, masked_uri(value))
    return value.rstrip("/")


TARGET_KEYS = {"region", "endpoint", "quotas", "owners", "labels", "credentials", "poll"}


def target_poll(key: str, value: object, top_level: object) -> PollSettings | None:
    """``targets[].poll``: the top-level ``poll`` block with this target's keys over it."""
    if value is None:
        return None
    overrides = check_keys(key, value, POLL_KEYS)
    inherited = top_level if isinstance(top_level, dict) else {}
    return parse_poll({**inherited, **overrides}, key)


def parse_target(
    key: str, value: object, environ: Mapping[str, str], top_level_poll: object = None
) -> Target:
    block = check_keys(key, value, TARGET_KEYS)
    region = block.get("region")
    if not isinstance(region, str) or not REGION.match(region):
        raise ConfigError(f"{key}.region", "a region id like cn-hangzhou", region)
    return Target(
        region=region,
        endpoint=endpoint_for(f"{key}.endpoint", block.get("endpoint"), region),
        credentials=parse_credentials(f"{key}.credentials", block.get("credentials"), environ),
        quotas=string_list(f"{key}.quotas", block.get("quotas")),
        owners=string_list(f"{key}.owners", block.get("owners")),
        labels=constant_labels(f"{key}.labels", block.get("labels")),
        poll=target_poll(f"{key}.poll", block.get("poll"), top_level_poll),
    )


def timeout_not_below_interval(
    timeout: float, interval: float, written: object, key: str = "poll"
) -> ConfigError:
    """The error for a timeout that does not fit in the interval, saying which to change."""
    limit = f"less than {key}.interval ({format_duration(interval)})"
    if written is not None:
        return ConfigError(f"{key}.timeout", limit, written)
    return ConfigError(
        f"{key}.timeout",
        f"{limit}, got the default {format_duration(timeout)}: set {key}.timeout below "
        f"{format_duration(interval)} or raise {key}.interval",
    )


POLL_KEYS = {
    "interval",
    "window",
    "page_concurrency",
    "timeout",
    "retries",
    "retry_backoff",
    "rate_limit",
    "deadline",
    "max_staleness",
}


def rate_limit_from(value: object, key: str = "poll.rate_limit") -> float:
    """``poll.rate_limit``: requests per second, above 0 and at most 10 000."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, "requests per second, a number above 0", value)
    if not 0 < value <= 10_000:
        raise ConfigError(key, "requests per second, above 0", value)
    return float(value)


def check_poll_times(
    key: str,
    block: Mapping[str, object],
    interval: float,
    timeout: float,
    deadline: float | None,
    max_staleness: float | None,
) -> None:
    """A poll's timeout and deadline fit in its interval; its data outlives one interval."""
    if timeout >= interval:
        raise timeout_not_below_interval(timeout, interval, block.get("timeout"), key)
    if deadline is not None and not timeout <= deadline < interval:
        raise ConfigError(
            f"{key}.deadline",
            f"at least {key}.timeout and less than {key}.interval",
            block["deadline"],
        )
    if max_staleness is not None and max_staleness < interval:
        raise ConfigError(
            f"{key}.max_staleness", f"at least {key}.interval", block["max_staleness"]
        )


def parse_poll(value: object, key: str = "poll") -> PollSettings:
    """A ``poll`` block (the top-level one, or a target's merged over it at ``key``)."""
    default = PollSettings()
    block = check_keys(key, {} if value is None else value, POLL_KEYS)

    def optional_duration(name: str, minimum: float) -> float | None:
        if name not in block:
            return None
        seconds = parse_duration(f"{key}.{name}", block[name])
        if seconds < minimum:
            raise ConfigError(f"{key}.{name}", f"at least {minimum:g}s", block[name])
        return seconds

    def duration(name: str, fallback: float, minimum: float) -> float:
        seconds = optional_duration(name, minimum)
        return fallback if seconds is None else seconds

    interval = duration("interval", default.interval, 1.0)
    window = duration("window", default.window, 60.0)
    timeout = duration("timeout", default.timeout, 0.1)
    backoff = duration("retry_backoff", default.retry_backoff, 0.0)
    deadline = optional_duration("deadline", 0.1)
    max_staleness = optional_duration("max_staleness", 0.0)
    check_poll_times(key, block, interval, timeout, deadline, max_staleness)
    concurrency = default.page_concurrency
    if "page_concurrency" in block:
        concurrency = bounded_int(f"{key}.page_concurrency", block["page_concurrency"], 1, 64)
    retries = default.retries
    if "retries" in block:
        retries = bounded_int(f"{key}.retries", block["retries"], 0, 10)
    return PollSettings(
        interval=interval,
        window=window,
        page_concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        retry_backoff=backoff,
        rate_limit=rate_limit_from(
            block.get("rate_limit", default.rate_limit), f"{key}.rate_limit"
        ),
        deadline=deadline,
        max_staleness=max_staleness,
    )


QUOTA_POLL_KEYS = {"quotas", "quotas_interval", "usage", "usage_interval"}


def parse_quota_poll(value: object, timeout: float) -> QuotaPollSettings:
    """``quota_poll``: a switch and an interval for ListQuotas and for GetQuotaUsage."""
    default = QuotaPollSettings()
    block = check_keys("quota_poll", {} if value is None else value, QUOTA_POLL_KEYS)

    def switch(name: str, fallback: bool) -> bool:
        flag = block.get(name, fallback)
        if not isinstance(flag, bool):
            raise ConfigError(f"quota_poll.{name}", "true or false", flag)
        return flag

    def interval(name: str, fallback: float) -> float:
        if name not in block:
            return fallback
        seconds = parse_duration(f"quota_poll.{name}", block[name])
        if seconds <= timeout:
            raise ConfigError(
                f"quota_poll.{name}",
                f"more than poll.timeout ({format_duration(timeout)})",
                block[name],
            )
        return seconds

    settings = QuotaPollSettings(
        quotas=switch("quotas", default.quotas),
        quotas_interval=interval("quotas_interval", default.quotas_interval),
        usage=switch("usage", default.usage),
        usage_interval=interval("usage_interval", default.usage_interval),
    )
    if settings.usage and not settings.quotas:
        raise ConfigError(
            "quota_poll.usage",
            "false while quota_poll.quotas is false (usage is asked per quota ListQuotas "
            "names): set quota_poll.usage: false or quota_poll.quotas: true",
        )
    return settings


def parse_config(data: object, environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML document; raises ``ConfigError`` on the first mistake."""
    environ = os.environ if environ is None else environ
    if data is None:
        raise ConfigError("config", "a mapping with a targets list (the file is empty)")
    block = check_keys("", data, {"targets", "poll", "metrics", "quota_poll"})
    raw_targets = block.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise ConfigError("targets", "a non-empty list of targets", raw_targets)
    poll = parse_poll(block.get("poll"))
    targets = tuple(
        parse_target(f"targets[{i}]", item, environ, block.get("poll"))
        for i, item in enumerate(raw_targets)
    )
    conflicts = target_conflicts(targets)
    if conflicts:
        raise FleetConflicts(conflicts)
    config = Config(
        targets=targets,
        poll=poll,
        metrics=parse_metrics(block.get("metrics")),
        quota_poll=parse_quota_poll(block.get("quota_poll"), poll.timeout),
    )
    raw_metrics = block.get("metrics")
    if isinstance(raw_metrics, dict) and "counter_retention" in raw_metrics:
        check_counter_retention(config, raw_metrics["counter_retention"])
    return config


def read_yaml(path: str | Path, flag: str) -> object:
    """The parsed YAML document in ``path``; any unreadable file is a ``ConfigError``.

    Only a regular file of at most 256 KiB is read (see ``files``): a FIFO never blocks it.
    """
    try:
        text = read_bounded_file(path, flag).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            str(path), f"UTF-8 text (byte {error.start} is not)", show_value=False
        ) from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), f"valid YAML (parse error{where})") from error
    except RecursionError as error:
        # PyYAML builds nested values recursively: thousands of [ or { exhaust the stack.
        raise ConfigError(str(path), "YAML nested less deeply") from error


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML file; raises ``ConfigError`` (I/O and YAML errors included)."""
    return parse_config(read_yaml(path, "--config"), environ)
