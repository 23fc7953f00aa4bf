"""What a reload keeps of the running exporter: all that the new configuration leaves unchanged.

A target is unchanged when the new configuration has the same target (region, endpoint,
filters, labels, credentials) with the same poll settings. Such a target keeps its client, and
with it its learned request rate, credentials and connections. If the metrics settings are the
same too, it keeps its published state (last good snapshot, readiness, last failure, and with
them its schedule: see ``wiring.Exporter.first_poll_at``) and, if the quota poll's settings are
the same as well, its quota state (and with it the quota parts' schedule: see
``wiring.quota_schedule``); with the same constant labels, interval and counter
retention, its jobs over time and its consumption keep counting. So a reload that changes one
target of fifty leaves the other forty-nine up, ready and served as they were; only the
changed one starts over.
"""

from __future__ import annotations

from exporter.config import Config, Target
from exporter.metrics.consumption import ConsumptionMetrics
from exporter.metrics.job_changes import JobChangeMetrics
from exporter.polling.publish.quota_snapshot import QuotaStatus, QuotaStore
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus


class ReloadCarry:
    """Decides, target by target, what goes on from ``old`` (None at start) to ``new``."""

    def __init__(self, old: Config | None, new: Config) -> None:
        self._old = old
        self._new = new

    def keeps_client(self, target: Target) -> bool:
        """The same target polled the same way: its client and learned rate go on."""
        old = self._old
        return (
            old is not None
            and target in old.targets
            and (old.poll_for(target) == self._new.poll_for(target))
        )

    def _keeps_data(self, target: Target) -> bool:
        old = self._old
        return old is not None and old.metrics == self._new.metrics and self.keeps_client(target)

    def statuses(self, store: SnapshotStore | None) -> dict[Target, TargetStatus]:
        """The published states that go on, for the new ``SnapshotStore``."""
        if store is None:
            return {}
        return {t: store.status(t) for t in self._new.targets if self._keeps_data(t)}

    def quota_statuses(self, store: QuotaStore | None) -> dict[Target, QuotaStatus]:
        """The quota states that go on, for the new ``QuotaStore``."""
        old = self._old
        if store is None or old is None or old.quota_poll != self._new.quota_poll:
            return {}
        return {t: store.status(t) for t in self._new.targets if self._keeps_data(t)}

    def _keeps_counters(self) -> bool:
        """The same metrics settings, labels, interval and counter retention: counters that
        were counting go on."""
        old, new = self._old, self._new
        return old is not None and (
            old.metrics == new.metrics
            and old.counter_retention == new.counter_retention
            and old.constant_label_names == new.constant_label_names
            and old.poll.interval == new.poll.interval
        )

    def job_changes(self, running: JobChangeMetrics | None) -> JobChangeMetrics | None:
        """The running jobs-over-time counters, if they can go on (the same settings and
        labels); they then forget the targets the new configuration does not have."""
        return running if self._keeps_counters() else None

    def consumption(self, running: ConsumptionMetrics | None) -> ConsumptionMetrics | None:
        """The running share-seconds counters, on the same terms as jobs over time."""
        return running if self._keeps_counters() else None
