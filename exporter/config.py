"""Load and validate the YAML configuration; every mistake is one line naming the key.

The result is immutable data: ``Config`` with its ``Target``s and ``PollSettings``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from exporter.api.signing import Credentials

if TYPE_CHECKING:
    from exporter.credentials_config import CredentialSpec

# Labels the exporter sets itself; a target's constant labels may not reuse them.
RESERVED_LABELS = frozenset(
    {
        "region",
        "quota",
        "project",
        "code",
        "reason",
        "version",
        "le",
        "instance",
        "job",
        "instance_id",
        "owner",
    }
)
# The per-job view exports at most twice this many jobs per target (top by CU, top by run time).
MAX_TOP_JOBS = 100
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
REGION = re.compile(r"^[a-z0-9][a-z0-9-]*$")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_EXPECTED = "a duration like 30s, 5m, 1h or 2d"


class ConfigError(ValueError):
    """A configuration mistake; ``str()`` is the one line shown to the user."""

    def __init__(self, key: str, expected: str, got: object = None, *, show_value: bool = True):
        detail = f", got {describe(got)}" if show_value and got is not None else ""
        super().__init__(f"{key}: expected {expected}{detail}")
        self.key = key

    @classmethod
    def unknown_key(cls, key: str, allowed: set[str]) -> ConfigError:
        error = cls(key, "")
        error.args = (f"{key}: unknown key (known keys: {', '.join(sorted(allowed))})",)
        return error


@dataclass(frozen=True, slots=True)
class Target:
    """One account and region to poll, with the constant labels its series carry."""

    region: str
    endpoint: str
    # Static keys, or the source to resolve them from (see exporter.api.credentials).
    credentials: Credentials | CredentialSpec
    quotas: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """A short identity for logs: region plus constant labels."""
        extra = ",".join(f"{k}={v}" for k, v in self.labels)
        return f"{self.region}{{{extra}}}" if extra else self.region


@dataclass(frozen=True, slots=True)
class PollSettings:
    interval: float = 60.0
    window: float = 86400.0
    page_concurrency: int = 4
    timeout: float = 10.0
    retries: int = 3
    retry_backoff: float = 0.5
    rate_limit: float = 1000.0
    # None: derived from interval (see ``effective_deadline``, ``effective_max_staleness``).
    deadline: float | None = None
    max_staleness: float | None = None

    @property
    def effective_deadline(self) -> float:
        """A poll's total time limit: 90% of the interval unless configured."""
        return self.deadline if self.deadline is not None else self.interval * 0.9

    @property
    def effective_max_staleness(self) -> float:
        """How long a failed target's last good snapshot is served: 3 intervals by default."""
        return self.max_staleness if self.max_staleness is not None else self.interval * 3


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    # 0: the per-job view is off; N: each target's top N jobs by CU share and by run time.
    top_jobs: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    targets: tuple[Target, ...]
    poll: PollSettings
    metrics: MetricsSettings = MetricsSettings()

    @property
    def constant_label_names(self) -> tuple[str, ...]:
        """Union of all targets' constant label names; a target without one exports ''."""
        return tuple(sorted({name for t in self.targets for name, _ in t.labels}))


def describe(value: object) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "null"
    return f"a {type(value).__name__ if not isinstance(value, Mapping) else 'mapping'}"


def parse_duration(key: str, value: object) -> float:
    """Seconds in ``value`` (``30s``, ``5m``, ``1h30m``, ``2d``, ``500ms``)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, DURATION_EXPECTED, value)
    total, position = 0.0, 0
    for match in DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise ConfigError(key, DURATION_EXPECTED, value)
    return total


def format_duration(seconds: float) -> str:
    """``seconds`` written the way the configuration takes durations (``1h30m``, ``500ms``)."""
    remaining = round(seconds * 1000)
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    if remaining:
        parts.append(f"{remaining}ms")
    return "".join(parts)


def check_keys(key: str, mapping: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise ConfigError(key or "config", "a mapping", mapping)
    for name in mapping:
        if name not in allowed:
            where = f"{key}.{name}" if key else str(name)
            raise ConfigError.unknown_key(where, allowed)
    return mapping


def non_empty_string(key: str, value: object, *, secret: bool = False) -> str:
    """``value`` if it is a non-empty string; else an error that says how to write one.

    A ``secret`` value is never shown. YAML reads bare digits as a number and yes/no/on/off
    as booleans, so those errors say to quote the value.
    """
    if isinstance(value, str) and value.strip():
        return value
    kind = "boolean" if isinstance(value, bool) else "number"
    if isinstance(value, (bool, int, float)):
        got = f"a {kind}" if secret else f"the {kind} {describe(value)}"
        raise ConfigError(
            key, f"a non-empty string, got {got}: put it in quotes so YAML reads it as text"
        )
    raise ConfigError(key, "a non-empty string", value, show_value=not secret)


def string_list(key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(key, "a list of strings", value)
    items = []
    for index, item in enumerate(value):
        non_empty_string(f"{key}[{index}]", item)
        # The API takes the list as one comma-joined parameter: a comma would split the item.
        if "," in item:
            raise ConfigError(f"{key}[{index}]", "a name without a comma", item)
        items.append(item)
    return tuple(items)


def constant_labels(key: str, value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(key, "a mapping of label names to strings", value)
    labels = []
    for name, label_value in value.items():
        if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{key}", "label names matching [a-zA-Z_][a-zA-Z0-9_]*", name)
        if name in RESERVED_LABELS:
            raise ConfigError(f"{key}.{name}", "a label name the exporter does not set itself")
        if not isinstance(label_value, str):
            raise ConfigError(f"{key}.{name}", "a string (quote it in YAML)", label_value)
        labels.append((name, label_value))
    return tuple(sorted(labels))


def credentials_from(
    key: str, value: object, environ: Mapping[str, str]
) -> Credentials | CredentialSpec:
    # Imported here: credentials_config builds on this module's ConfigError and helpers.
    from exporter.credentials_config import parse_credentials

    return parse_credentials(key, value, environ)


def endpoint_for(key: str, value: object, region: str) -> str:
    if value is None:
        return f"https://maxcompute.{region}.aliyuncs.com"
    if not isinstance(value, str):
        raise ConfigError(key, "a URL like https://maxcompute.cn-hangzhou.aliyuncs.com", value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(key, "a URL like https://maxcompute.cn-hangzhou.aliyuncs.com", value)
    return value.rstrip("/")


def parse_target(key: str, value: object, environ: Mapping[str, str]) -> Target:
    block = check_keys(
        key, value, {"region", "endpoint", "quotas", "owners", "labels", "credentials"}
    )
    region = block.get("region")
    if not isinstance(region, str) or not REGION.match(region):
        raise ConfigError(f"{key}.region", "a region id like cn-hangzhou", region)
    return Target(
        region=region,
        endpoint=endpoint_for(f"{key}.endpoint", block.get("endpoint"), region),
        credentials=credentials_from(f"{key}.credentials", block.get("credentials"), environ),
        quotas=string_list(f"{key}.quotas", block.get("quotas")),
        owners=string_list(f"{key}.owners", block.get("owners")),
        labels=constant_labels(f"{key}.labels", block.get("labels")),
    )


def timeout_not_below_interval(timeout: float, interval: float, written: object) -> ConfigError:
    """The error for a timeout that does not fit in the interval, saying which to change."""
    limit = f"less than poll.interval ({format_duration(interval)})"
    if written is not None:
        return ConfigError("poll.timeout", limit, written)
    return ConfigError(
        "poll.timeout",
        f"{limit}, got the default {format_duration(timeout)}: set poll.timeout below "
        f"{format_duration(interval)} or raise poll.interval",
    )


def bounded_int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"a whole number from {low} to {high}", value)
    return value


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


def parse_poll(value: object) -> PollSettings:
    default = PollSettings()
    block = check_keys("poll", {} if value is None else value, POLL_KEYS)

    def optional_duration(name: str, minimum: float) -> float | None:
        if name not in block:
            return None
        seconds = parse_duration(f"poll.{name}", block[name])
        if seconds < minimum:
            raise ConfigError(f"poll.{name}", f"at least {minimum:g}s", block[name])
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
    if timeout >= interval:
        raise timeout_not_below_interval(timeout, interval, block.get("timeout"))
    if deadline is not None and not timeout <= deadline < interval:
        raise ConfigError(
            "poll.deadline", "at least poll.timeout and less than poll.interval", block["deadline"]
        )
    if max_staleness is not None and max_staleness < interval:
        raise ConfigError("poll.max_staleness", "at least poll.interval", block["max_staleness"])
    concurrency = default.page_concurrency
    if "page_concurrency" in block:
        concurrency = bounded_int("poll.page_concurrency", block["page_concurrency"], 1, 64)
    retries = default.retries
    if "retries" in block:
        retries = bounded_int("poll.retries", block["retries"], 0, 10)
    rate_limit = default.rate_limit
    if "rate_limit" in block:
        rate_limit = block["rate_limit"]
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, (int, float)):
            raise ConfigError(
                "poll.rate_limit", "requests per second, a number above 0", rate_limit
            )
        if not 0 < rate_limit <= 10_000:
            raise ConfigError("poll.rate_limit", "requests per second, above 0", rate_limit)
    return PollSettings(
        interval=interval,
        window=window,
        page_concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        retry_backoff=backoff,
        rate_limit=float(rate_limit),
        deadline=deadline,
        max_staleness=max_staleness,
    )


def parse_metrics(value: object) -> MetricsSettings:
    block = check_keys("metrics", {} if value is None else value, {"top_jobs"})
    top_jobs = MetricsSettings().top_jobs
    if "top_jobs" in block:
        top_jobs = bounded_int("metrics.top_jobs", block["top_jobs"], 0, MAX_TOP_JOBS)
    return MetricsSettings(top_jobs=top_jobs)


def parse_config(data: object, environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML document; raises ``ConfigError`` on the first mistake."""
    environ = os.environ if environ is None else environ
    if data is None:
        raise ConfigError("config", "a mapping with a targets list (the file is empty)")
    block = check_keys("", data, {"targets", "poll", "metrics"})
    raw_targets = block.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise ConfigError("targets", "a non-empty list of targets", raw_targets)
    targets = tuple(
        parse_target(f"targets[{i}]", item, environ) for i, item in enumerate(raw_targets)
    )
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for index, target in enumerate(targets):
        identity = (target.region, target.labels)
        if identity in seen:
            raise ConfigError(
                f"targets[{index}]",
                f"region and labels different from targets[{seen[identity]}] "
                "(add a label such as account to tell them apart)",
            )
        seen[identity] = index
    return Config(
        targets=targets,
        poll=parse_poll(block.get("poll")),
        metrics=parse_metrics(block.get("metrics")),
    )


def read_yaml(path: str | Path, flag: str) -> object:
    """The parsed YAML document in ``path``; any unreadable file is a ``ConfigError``."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(flag, "a readable file", str(path)) from error
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
