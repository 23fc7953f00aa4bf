"""The published result of each target's quota poll: capacity and usage, each with its health.

ListQuotas and GetQuotaUsage are two parts polled on their own schedules; each part's result
is swapped in whole, and each part's health (up, last success, last failure) is its own, so a
failure of one never marks the other (or the running-jobs poll) failed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from exporter.api.wire.quota_usage import USAGE_ACTION, QuotaUsage
from exporter.api.wire.quotas import LIST_QUOTAS_ACTION, QuotaCapacity
from exporter.config import Target
from exporter.polling.publish.snapshot import PollFailure

# The quota poll's parts, by the operation each calls (the ``operation`` label).
OPERATIONS = (LIST_QUOTAS_ACTION, USAGE_ACTION)


@dataclass(frozen=True, slots=True)
class PartStatus:
    """One part's health: ``up`` None until its first poll ended."""

    up: bool | None = None
    last_success: float | None = None
    last_failure: PollFailure | None = None

    @property
    def last_ended(self) -> float | None:
        """When the part's last poll ended (Unix seconds), good or not; None if it never ran."""
        failed = self.last_failure.at if self.last_failure is not None else None
        ends = [end for end in (self.last_success, failed) if end is not None]
        return max(ends) if ends else None


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """One target's quota state: the last good listing and usage, and each part's health."""

    target: Target
    parts: Mapping[str, PartStatus] = field(
        default_factory=lambda: MappingProxyType({op: PartStatus() for op in OPERATIONS})
    )
    quotas: tuple[QuotaCapacity, ...] = ()
    usage: Mapping[str, QuotaUsage] = field(default_factory=lambda: MappingProxyType({}))

    def part(self, operation: str) -> PartStatus:
        return self.parts[operation]


class QuotaStore:
    """Each target's latest quota status, swapped whole on every publication."""

    def __init__(
        self, targets: tuple[Target, ...], carried: Mapping[Target, QuotaStatus] | None = None
    ) -> None:
        """``carried``: statuses a reload keeps (of the targets it left unchanged)."""
        carried = carried or {}
        self._lock = threading.Lock()
        self._statuses: Mapping[Target, QuotaStatus] = MappingProxyType(
            {target: carried.get(target) or QuotaStatus(target) for target in targets}
        )

    def statuses(self) -> tuple[QuotaStatus, ...]:
        return tuple(self._statuses.values())

    def status(self, target: Target) -> QuotaStatus:
        return self._statuses[target]

    def _update(self, target: Target, operation: str, part: PartStatus, **changes: object) -> None:
        with self._lock:
            status = self._statuses[target]
            parts = MappingProxyType({**status.parts, operation: part})
            statuses = dict(self._statuses)
            statuses[target] = replace(status, parts=parts, **changes)
            self._statuses = MappingProxyType(statuses)

    def publish_quotas(self, target: Target, quotas: tuple[QuotaCapacity, ...], at: float) -> None:
        previous = self._statuses[target].part(LIST_QUOTAS_ACTION)
        part = PartStatus(True, at, previous.last_failure)
        self._update(target, LIST_QUOTAS_ACTION, part, quotas=quotas)

    def publish_usage(self, target: Target, usage: Mapping[str, QuotaUsage], at: float) -> None:
        previous = self._statuses[target].part(USAGE_ACTION)
        part = PartStatus(True, at, previous.last_failure)
        self._update(target, USAGE_ACTION, part, usage=MappingProxyType(dict(usage)))

    def publish_failure(self, target: Target, operation: str, failure: PollFailure) -> None:
        """Mark the part down; its last good result stays until the collector drops it."""
        previous = self._statuses[target].part(operation)
        self._update(target, operation, PartStatus(False, previous.last_success, failure))
