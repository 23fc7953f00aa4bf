"""One GetQuotaUsage round's result: each quota's usage stands or falls alone.

A quota whose usage was read is published as read. A quota whose request answered 404 was
deleted since the listing: it is dropped and counted (``skipped``). A quota whose request failed
otherwise (a timeout, a 5xx, throttling past the retries) keeps its last points while they are as
recent as a fresh answer could be (``usage_window``), their age in
``maxcompute_quota_usage_age_seconds``; older ones are dropped. Only a round where no quota's
usage could be read fails, as the last error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.api.errors import ApiError
from exporter.api.wire.quota_usage import QuotaUsage, UsagePoint, usage_window

NOT_FOUND = 404


@dataclass(frozen=True, slots=True)
class UsageRound:
    """What a round publishes: the usage by quota, the values and quotas skipped, and the
    quotas whose request failed (their recent points kept)."""

    usage: Mapping[str, QuotaUsage]
    skipped: int
    failed: tuple[str, ...]


def _recent(point: UsagePoint | None, start: float) -> UsagePoint | None:
    return point if point is not None and point.at >= start else None


def kept_while_recent(usage: QuotaUsage | None, now: float) -> QuotaUsage | None:
    """``usage``'s points no older than a fresh answer's could be; None if none is left."""
    if usage is None:
        return None
    start, _ = usage_window(now)
    used, requested = _recent(usage.used, start), _recent(usage.requested, start)
    if used is None and requested is None:
        return None
    return QuotaUsage(used, requested)


def usage_round(
    answers: Mapping[str, QuotaUsage | ApiError], previous: Mapping[str, QuotaUsage], now: float
) -> UsageRound:
    """The round's result from each quota's answer (or error) and the last published usage.

    Raises the last error when no quota's usage was read (every request failed or 404).
    """
    usage: dict[str, QuotaUsage] = {}
    skipped = 0
    failed: list[str] = []
    last_error: ApiError | None = None
    for quota, answer in answers.items():
        if isinstance(answer, QuotaUsage):
            usage[quota] = answer
            skipped += answer.skipped
            continue
        last_error = answer
        if answer.status == NOT_FOUND:
            skipped += 1  # deleted since the listing: dropped alone
            continue
        failed.append(quota)
        kept = kept_while_recent(previous.get(quota), now)
        if kept is not None:
            usage[quota] = kept
    if last_error is not None and not any(isinstance(a, QuotaUsage) for a in answers.values()):
        raise last_error
    return UsageRound(usage, skipped, tuple(failed))
