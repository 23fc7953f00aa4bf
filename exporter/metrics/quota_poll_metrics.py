"""The quota poll's own counters: the ``QuotaPollObserver`` that quota pollers report to.

Each enabled operation's children exist from the start, so ``rate()`` and ``increase()`` behave
before the first event.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from exporter.api.errors import REASONS
from exporter.config import Target
from exporter.metrics.families import target_label_values
from exporter.metrics.poll_metrics import POLL_DURATION_BUCKETS


class QuotaPollMetrics:
    """Counts what quota pollers report: requests, failures by reason, skipped values, time."""

    def __init__(
        self,
        registry: CollectorRegistry,
        targets: Sequence[Target],
        label_names: tuple[str, ...],
        operations: Sequence[str],
    ) -> None:
        self._label_names = label_names
        labels = ["region", *label_names, "operation"]
        self.api_requests = Counter(
            "maxcompute_exporter_quota_api_requests",
            "ListQuotas and GetQuotaUsage API calls by outcome: HTTP status, or timeout / "
            "connection_error / cancelled.",
            [*labels, "code"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "maxcompute_exporter_quota_poll_errors",
            "Failed quota polls by operation and reason (auth: the RAM policy lacks "
            "odps:ListQuotas or odps:GetQuotaUsage, named in the log).",
            [*labels, "reason"],
            registry=registry,
        )
        self.invalid_values = Counter(
            "maxcompute_exporter_quota_invalid_values",
            "Quota records, fields, usage series and points skipped: missing, null where a "
            "value must be, mistyped, out of range, misaligned with the timestamps, an unknown "
            "key, or a point outside the asked window; and quotas whose usage answered 404.",
            labels,
            registry=registry,
        )
        self.poll_duration = Histogram(
            "maxcompute_exporter_quota_poll_duration_seconds",
            "Wall time of a quota poll (every page of ListQuotas, or every GetQuotaUsage "
            "request), failed polls included.",
            labels,
            buckets=POLL_DURATION_BUCKETS,
            registry=registry,
        )
        for target in targets:
            values = target_label_values(target, label_names)
            for operation in operations:
                self.invalid_values.labels(*values, operation)
                self.poll_duration.labels(*values, operation)
                for reason in REASONS:
                    self.poll_errors.labels(*values, operation, reason)

    # --- QuotaPollObserver ----------------------------------------------------------------

    def quota_request_sent(self, target: Target, operation: str, code: str) -> None:
        values = target_label_values(target, self._label_names)
        self.api_requests.labels(*values, operation, code).inc()

    def quota_poll_ended(
        self, target: Target, operation: str, failure: str | None, skipped: int, seconds: float
    ) -> None:
        values = [*target_label_values(target, self._label_names), operation]
        self.poll_duration.labels(*values).observe(seconds)
        self.invalid_values.labels(*values).inc(skipped)
        if failure is not None:
            self.poll_errors.labels(*values, failure).inc()
