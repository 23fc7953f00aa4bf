"""GetQuotaUsage: a quota's used and requested CPU, one point a minute, the latest one kept.

``GET /api/v1/quotas/{level-1 nickname}/usage?from=&to=&productId=ODPS&aggMethod=max``, with
``subQuotaNickname`` for a level-2 quota. ``from`` and ``to`` are seconds; the answer's
``data.metrics.timestamps`` are milliseconds, and each series beside them is aligned with them,
nulls allowed. ``data.metrics`` is typed as a free map: a key not read here, a series of the
wrong length, a value that is not a number (or out of range, as 10**400) or a timestamp outside
the asked window is skipped and counted, never a failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from exporter.api.errors import ApiError
from exporter.api.wire.pages import open_envelope
from exporter.api.wire.quotas import QUOTAS_PATH

USAGE_ACTION = "GetQuotaUsage"
USAGE_RAM_ACTION = "odps:GetQuotaUsage"
# How far back each usage request looks: long enough to find a point a few minutes late.
USAGE_LOOKBACK_SECONDS = 600
# Timestamps above this are milliseconds (10^11 s is the year 5138).
MILLISECONDS_ABOVE = 10**11
# How far past the exporter's clock a point may lie and still be read (the clocks' skew): a
# point from the future would otherwise win over every real one, served as 0 seconds old.
USAGE_CLOCK_SKEW_SECONDS = 60

# Every key code calling the real service reads; only the used and requested ones are exported.
KNOWN_KEYS = frozenset(
    {
        "timestamps",
        "minCpu",
        "maxCpu",
        "usedCpu",
        "postpay-usedCpu",
        "adhocCpu",
        "adhocUsedCpu",
        "requestCpu",
        "totalMaxCpu",
        "totalUsedCpu",
    }
)


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """One point of a usage series: cores, and when (Unix seconds)."""

    cores: float
    at: float


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """The latest non-null used and requested CPU of one quota, and the values skipped."""

    used: UsagePoint | None
    requested: UsagePoint | None
    skipped: int = 0


def usage_path(level1: str) -> str:
    return f"{QUOTAS_PATH}/{quote(level1, safe='')}/usage"


def usage_query(now: float, sub_quota: str | None) -> dict[str, str]:
    """The query of one usage request over the last ``USAGE_LOOKBACK_SECONDS``."""
    end = int(now)
    query = {
        "from": str(end - USAGE_LOOKBACK_SECONDS),
        "to": str(end),
        "productId": "ODPS",
        "aggMethod": "max",
    }
    if sub_quota is not None:
        query["subQuotaNickname"] = sub_quota
    return query


def _number(value: object) -> float | None:
    """A finite number >= 0 as a float, else None (10**400 too: valid JSON, no float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def usage_window(now: float) -> tuple[float, float]:
    """The closed interval a point's time must lie in to be read: from the asked ``from``
    (``USAGE_LOOKBACK_SECONDS`` back) to ``USAGE_CLOCK_SKEW_SECONDS`` past ``now``."""
    return float(int(now) - USAGE_LOOKBACK_SECONDS), now + USAGE_CLOCK_SKEW_SECONDS


class AlignedSeries:
    """The answer's series that line up with its timestamps; the others are skipped, counted.

    A timestamp that is no number, or lies outside ``usage_window(now)``, is skipped and counted
    once: the points at it are not read.
    """

    def __init__(self, metrics: Mapping, now: float) -> None:
        self.skipped = 0
        stamps = metrics.get("timestamps")
        self.times: list[float | None] = []
        if isinstance(stamps, list):
            self.times = [self._time(stamp, now) for stamp in stamps]
        elif stamps is not None:
            self.skipped += 1
        self.series: dict[str, Sequence[object]] = {}
        for key, values in metrics.items():
            if key == "timestamps":
                continue
            if key not in KNOWN_KEYS:
                self.skipped += 1
            elif not isinstance(values, list) or len(values) != len(self.times):
                self.skipped += 1  # misaligned: which value belongs to which minute is unknown
            else:
                self.series[key] = values

    def _time(self, stamp: object, now: float) -> float | None:
        if stamp is None:
            return None
        seconds = _number(stamp)
        if seconds is not None and seconds > MILLISECONDS_ABOVE:
            seconds /= 1000.0
        start, end = usage_window(now)
        if seconds is None or not start <= seconds <= end:
            self.skipped += 1
            return None
        return seconds

    def value(self, key: str, index: int) -> float | None:
        values = self.series.get(key)
        if values is None:
            return None
        raw = values[index]
        number = _number(raw)
        if number is None and raw is not None:
            self.skipped += 1
        return number

    def used(self, index: int) -> float | None:
        """Cores in use: totalUsedCpu, else usedCpu (+ adhocUsedCpu), else postpay-usedCpu."""
        total = self.value("totalUsedCpu", index)
        if total is not None:
            return total
        reserved = self.value("usedCpu", index)
        if reserved is not None:
            return reserved + (self.value("adhocUsedCpu", index) or 0.0)
        return self.value("postpay-usedCpu", index)

    def latest(self, read: str) -> UsagePoint | None:
        """The latest point whose time and value are both given."""
        reader = self.used if read == "used" else lambda i: self.value("requestCpu", i)
        best: UsagePoint | None = None
        for index, at in enumerate(self.times):
            if at is None:
                continue
            cores = reader(index)
            if cores is not None and (best is None or at > best.at):
                best = UsagePoint(cores, at)
        return best


def parse_usage(status: int, body: bytes, now: float, retry_after: str | None = None) -> QuotaUsage:
    """One GetQuotaUsage answer asked at ``now``: its latest used and requested points within
    the asked window; or ``ApiError``."""
    envelope, request_id = open_envelope(status, body, retry_after, USAGE_ACTION)
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise ApiError("invalid_response", "response has no data object", request_id=request_id)
    metrics = data.get("metrics")
    if metrics is None:
        return QuotaUsage(None, None)  # no points yet: nothing to say, nothing wrong
    if not isinstance(metrics, dict):
        raise ApiError("invalid_response", "data.metrics is not an object", request_id=request_id)
    aligned = AlignedSeries(metrics, now)
    used = aligned.latest("used")
    requested = aligned.latest("requested")
    return QuotaUsage(used, requested, aligned.skipped)
