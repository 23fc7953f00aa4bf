"""The ``metrics`` block: what the metrics add beyond the aggregates, and their bounds."""

from __future__ import annotations

from exporter.config.model import MIN_COUNTER_RETENTION_INTERVALS, Config, MetricsSettings
from exporter.config.values import (
    ConfigError,
    boolean,
    bounded_int,
    bucket_bounds,
    check_keys,
    format_duration,
    parse_duration,
)

# The per-job view exports at most twice this many jobs per target (top by CU, top by run time).
MAX_TOP_JOBS = 100

# Integer keys of ``metrics`` and their ranges.
METRICS_LIMITS = {
    "top_jobs": (0, MAX_TOP_JOBS),
    "max_projects_per_quota": (1, 10_000),
    "max_quotas_per_target": (1, 10_000),
    "max_owners_per_quota": (1, 10_000),
}
METRICS_SWITCHES = ("job_changes", "owner_consumption")
METRICS_KEYS = {
    *METRICS_LIMITS,
    *METRICS_SWITCHES,
    "queue_wait_buckets",
    "run_time_buckets",
    "counter_retention",
}


def parse_metrics(value: object) -> MetricsSettings:
    block = check_keys("metrics", {} if value is None else value, METRICS_KEYS)
    settings: dict[str, object] = {
        name: bounded_int(f"metrics.{name}", block[name], low, high)
        for name, (low, high) in METRICS_LIMITS.items()
        if name in block
    }
    for name in METRICS_SWITCHES:
        if name in block:
            settings[name] = boolean(f"metrics.{name}", block[name])
    for name in ("queue_wait_buckets", "run_time_buckets"):
        if name in block:
            settings[name] = bucket_bounds(f"metrics.{name}", block[name])
    if "counter_retention" in block:
        value = block["counter_retention"]
        settings["counter_retention"] = parse_duration("metrics.counter_retention", value)
    return MetricsSettings(**settings)


def check_counter_retention(config: Config, value: object) -> None:
    """A set ``metrics.counter_retention`` must outlast a few of the longest poll intervals."""
    least = MIN_COUNTER_RETENTION_INTERVALS * config.longest_interval
    if config.counter_retention < least:
        raise ConfigError(
            "metrics.counter_retention",
            f"at least {format_duration(least)} ({MIN_COUNTER_RETENTION_INTERVALS} x the longest "
            "poll.interval), so a group missing from a poll or two keeps its counters",
            value,
        )
