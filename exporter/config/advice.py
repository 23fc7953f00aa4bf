"""Warnings about a valid configuration that probably does not do what its author wants.

Pure functions of a ``Config``: the CLI logs what they return at start and on --check-config.
"""

from __future__ import annotations

import difflib
import math

from exporter.config.fleet import duplicate_warnings
from exporter.config.model import Config, PollSettings, Target
from exporter.config.values import format_duration

# Region ids of the MaxCompute OpenAPI (2022-01-04) endpoints, as listed in docs/configuration.md.
MAXCOMPUTE_REGIONS = (
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-wulanchabu",
    "cn-shenzhen",
    "cn-chengdu",
    "cn-hongkong",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "us-east-1",
    "us-west-1",
    "eu-central-1",
    "eu-west-1",
    "me-east-1",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-beijing-finance-1",
    "cn-north-2-gov-1",
)

# Past this, a window is longer than the documented default and costs more pages per poll.
DEFAULT_WINDOW_SECONDS = PollSettings().window
JOBS_PER_PAGE = 20
EXAMPLE_JOBS = 1000  # the running-job count the window warning prices


def nearest_region(region: str) -> str | None:
    """The known region id closest to ``region`` by edit similarity, if one is close."""
    # "hangzhou" is far from "cn-hangzhou" as a whole string but equal to its city part.
    for known in MAXCOMPUTE_REGIONS:
        if region == known.split("-", 1)[1]:
            return known
    matches = difflib.get_close_matches(region, MAXCOMPUTE_REGIONS, n=1, cutoff=0.6)
    return matches[0] if matches else None


def region_warning(key: str, target: Target) -> str | None:
    """A warning for a region id outside the documented list, naming the nearest one."""
    if target.region in MAXCOMPUTE_REGIONS:
        return None
    nearest = nearest_region(target.region)
    hint = f"did you mean {nearest}?" if nearest else "see docs/configuration.md for the list"
    return (
        f"{key}.region: {target.region!r} is not a known MaxCompute region ({hint}); "
        f"polling {target.endpoint} as configured"
    )


def window_warning(poll: PollSettings, key: str = "poll") -> str | None:
    """What a window longer than the default costs, in requests per poll and per hour."""
    if poll.window <= DEFAULT_WINDOW_SECONDS:
        return None
    window, interval = format_duration(poll.window), format_duration(poll.interval)
    per_poll = EXAMPLE_JOBS // JOBS_PER_PAGE
    per_hour = math.ceil(per_poll * 3600 / poll.interval)
    return (
        f"{key}.window: {window} makes every poll read every running job submitted in the last "
        f"{window}, at least one request per {JOBS_PER_PAGE} of them, every {interval}: "
        f"{EXAMPLE_JOBS} such jobs cost {per_poll} requests a poll, {per_hour} an hour. "
        f"Keep it over {format_duration(DEFAULT_WINDOW_SECONDS)} only if jobs run that long"
    )


def config_warnings(config: Config) -> tuple[str, ...]:
    """Every warning for ``config``, one line each, in the order of the file."""
    warnings = [region_warning(f"targets[{i}]", t) for i, t in enumerate(config.targets)]
    warnings.append(window_warning(config.poll))
    warnings += [
        window_warning(t.poll, f"targets[{i}].poll")
        for i, t in enumerate(config.targets)
        if t.poll is not None and t.poll.window != config.poll.window
    ]
    warnings += duplicate_warnings(config.targets)
    return tuple(warning for warning in warnings if warning is not None)
