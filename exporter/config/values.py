"""One YAML value checked at a time: the error every mistake becomes, durations, names, lists.

Each checker takes the key it reads (for the one-line error) and returns the value or raises
``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_EXPECTED = "a duration like 30s, 5m, 1h or 2d"
# The longest duration any key takes: past it, timers and clocks overflow (or mean nothing).
MAX_DURATION_SECONDS = 365 * 86400.0


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
    if not total <= MAX_DURATION_SECONDS:  # also refuses inf, from a 400-digit number
        raise ConfigError(key, "a duration of at most 365d", value)
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


def bounded_int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"a whole number from {low} to {high}", value)
    return value


MAX_BUCKETS = 30
BUCKETS_EXPECTED = (
    f"a list of 1 to {MAX_BUCKETS} increasing upper bounds in seconds, numbers or durations "
    "(e.g. [60, 10m, 1h])"
)


def bucket_bounds(key: str, value: object) -> tuple[float, ...]:
    """Histogram bucket bounds in seconds: positive, finite, strictly increasing (+Inf implied)."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BUCKETS:
        raise ConfigError(key, BUCKETS_EXPECTED, value)
    bounds: list[float] = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if isinstance(item, str):
            seconds = parse_duration(where, item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            seconds = float(item)
        else:
            raise ConfigError(where, "a number of seconds or a duration like 10m", item)
        if not (0 < seconds < float("inf")):
            raise ConfigError(where, "a bound above 0 and finite (+Inf is always added)", item)
        if bounds and seconds <= bounds[-1]:
            raise ConfigError(where, f"a bound above the one before it ({bounds[-1]:g}s)", item)
        bounds.append(seconds)
    return tuple(bounds)


def boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "true or false", value)
    return value
