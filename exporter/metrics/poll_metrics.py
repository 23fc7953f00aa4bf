"""The exporter's own counters of its polls: the ``PollObserver`` that pollers report to.

Each target's children exist from the start, so ``rate()`` and ``absent()`` behave before the
first event.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from exporter.api.errors import REASONS
from exporter.config import Target
from exporter.metrics.families import target_label_values
from exporter.polling.schedule.observer import PollOutcome

# `_created` series double the self-metrics and no dashboard here reads them.
disable_created_metrics()

POLL_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class PollMetrics:
    """Counts what pollers report (requests, failures, durations, rates) on a given registry."""

    def __init__(
        self,
        registry: CollectorRegistry,
        targets: Sequence[Target],
        label_names: tuple[str, ...],
    ) -> None:
        self._label_names = label_names
        target_labels = ["region", *label_names]
        self.api_requests = Counter(
            "maxcompute_exporter_api_requests",
            "GetRunningJobs API calls by outcome: HTTP status (a rare one as 4xx, 5xx or other), "
            "or timeout / connection_error / cancelled (sent, the poll ended before the answer).",
            [*target_labels, "code"],
            registry=registry,
        )
        self.invalid_jobs = Counter(
            "maxcompute_exporter_invalid_jobs",
            "Job records skipped because a field was missing, null or mistyped.",
            target_labels,
            registry=registry,
        )
        self.progress_out_of_range = Counter(
            "maxcompute_exporter_progress_out_of_range",
            "Job progress values outside 0..1, clamped before summing.",
            target_labels,
            registry=registry,
        )
        self.poll_errors = Counter(
            "maxcompute_exporter_poll_errors",
            "Failed polls by reason.",
            [*target_labels, "reason"],
            registry=registry,
        )
        self.poll_duration = Histogram(
            "maxcompute_exporter_poll_duration_seconds",
            "Wall time of a poll of every page of GetRunningJobs, failed polls included.",
            target_labels,
            buckets=POLL_DURATION_BUCKETS,
            registry=registry,
        )
        self._register_rates(registry, target_labels)
        for target in targets:
            self._create_children(target)

    def _register_rates(self, registry: CollectorRegistry, target_labels: list[str]) -> None:
        self.request_rate = Gauge(
            "maxcompute_exporter_request_rate",
            "Requests per second the exporter currently allows itself against GetRunningJobs: "
            "learned from the service's throttling, at most poll.rate_limit.",
            target_labels,
            registry=registry,
        )
        self.last_poll_requests = Gauge(
            "maxcompute_exporter_last_poll_requests",
            "GetRunningJobs requests the last poll sent, retries included, failed polls too.",
            target_labels,
            registry=registry,
        )
        self.slice_rereads = Counter(
            "maxcompute_exporter_slice_rereads",
            "Slices of the submission-time window read again because their answers "
            "contradicted each other (the running list moved under the read).",
            target_labels,
            registry=registry,
        )

        self.last_poll_approximate_jobs = Gauge(
            "maxcompute_exporter_last_poll_approximate_jobs",
            "Jobs the last good poll read both ways in parts of a dense second (more than a "
            "page of jobs by one quota and owner within two seconds) that moved while read: "
            "each such part is within the jobs that started or finished during its read.",
            target_labels,
            registry=registry,
        )
        self.last_poll_unseen_jobs = Gauge(
            "maxcompute_exporter_last_poll_unseen_jobs",
            "Jobs the last good poll's totalCount answers counted that no answer showed (a "
            "service listing one second's jobs in another order on every answer): each "
            "published job count is short by at most this many, beyond the approximate jobs' "
            "changes; their sum by exactly this many.",
            target_labels,
            registry=registry,
        )
        self.approximate_parts = Counter(
            "maxcompute_exporter_approximate_parts",
            "Parts of dense seconds read both ways that moved while read (published within "
            "the jobs that started or finished during their read, never failing the poll).",
            target_labels,
            registry=registry,
        )

    def _create_children(self, target: Target) -> None:
        values = self._labels(target)
        self.invalid_jobs.labels(*values)
        self.progress_out_of_range.labels(*values)
        self.poll_duration.labels(*values)
        self.slice_rereads.labels(*values)
        self.approximate_parts.labels(*values)
        for reason in REASONS:
            self.poll_errors.labels(*values, reason)

    def _labels(self, target: Target) -> list[str]:
        return target_label_values(target, self._label_names)

    # --- PollObserver ---------------------------------------------------------------------

    def request_sent(self, target: Target, code: str) -> None:
        self.api_requests.labels(*self._labels(target), code).inc()

    def rate_learned(self, target: Target, requests_per_second: float) -> None:
        self.request_rate.labels(*self._labels(target)).set(requests_per_second)

    def poll_ended(self, target: Target, outcome: PollOutcome) -> None:
        values = self._labels(target)
        self.poll_duration.labels(*values).observe(outcome.seconds)
        if outcome.requests is not None:
            self.last_poll_requests.labels(*values).set(outcome.requests)
            self.slice_rereads.labels(*values).inc(outcome.rereads)
        self.request_rate.labels(*values).set(outcome.request_rate)
        if outcome.failure is not None:
            self.poll_errors.labels(*values, outcome.failure).inc()
        else:
            self.last_poll_approximate_jobs.labels(*values).set(outcome.approximate_jobs)
            self.last_poll_unseen_jobs.labels(*values).set(outcome.unseen_jobs)
        self.approximate_parts.labels(*values).inc(outcome.approximate_parts)
        self.invalid_jobs.labels(*values).inc(outcome.invalid_jobs)
        self.progress_out_of_range.labels(*values).inc(outcome.progress_out_of_range)
