"""Prometheus metrics: job aggregates from the snapshot, and the exporter's own health.

Job metrics, one family per aggregate, labelled by region, quota, project and the target's
constant labels, for example::

    # HELP maxcompute_running_jobs Running jobs (from a background poll ... every 60s).
    # TYPE maxcompute_running_jobs gauge
    maxcompute_running_jobs{account="prod",project="etl",quota="my_quota",region="cn-hangzhou"} 3.0

The job part of the exposition only changes when a poll publishes, so ``MetricsRenderer``
renders it once per change and serves those bytes; the small self-metrics are rendered per scrape.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.api.errors import REASONS
from exporter.api.jobs import is_renderable
from exporter.config import Target
from exporter.metrics.job_view import TopJobsCollector
from exporter.polling.aggregation import GroupAggregate
from exporter.polling.snapshot import SnapshotStore, TargetStatus, is_stale

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.collector")

# `_created` series double the self-metrics and no dashboard here reads them.
disable_created_metrics()

# Level 1: most of the size win for a fraction of the CPU; the job part is compressed per poll.
GZIP_LEVEL = 1
POLL_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


def target_label_values(target: Target, label_names: tuple[str, ...]) -> list[str]:
    """``region`` then the constant labels in ``label_names`` order ('' where not set)."""
    labels = dict(target.labels)
    return [target.region, *(labels.get(name, "") for name in label_names)]


@dataclass(frozen=True, slots=True)
class JobMetric:
    name: str
    help: str
    value: Callable[[GroupAggregate], float | None]


JOB_METRICS = (
    JobMetric("maxcompute_running_jobs", "Running jobs", lambda g: g.running_jobs),
    JobMetric(
        "maxcompute_running_jobs_cu_ratio",
        "Sum of the running jobs' cuSnapshot, their share of the quota's CUs (0..1 per quota)",
        lambda g: g.cu_ratio,
    ),
    JobMetric(
        "maxcompute_running_jobs_memory_ratio",
        "Sum of the running jobs' memorySnapshot, their share of the quota's memory",
        lambda g: g.memory_ratio,
    ),
    JobMetric(
        "maxcompute_running_jobs_progress_sum_ratio",
        "Sum of the running jobs' progress, each 0..1 (out-of-range values clamped); "
        "divided by maxcompute_running_jobs it is their mean progress",
        lambda g: g.progress_sum,
    ),
    JobMetric(
        "maxcompute_running_jobs_oldest_start_timestamp_seconds",
        "Earliest runningAtTime among the running jobs, Unix seconds",
        lambda g: g.oldest_start_seconds,
    ),
    JobMetric(
        "maxcompute_running_jobs_max_queue_seconds",
        "Longest wait from submission to start among the running jobs",
        lambda g: g.max_queue_seconds,
    ),
    JobMetric(
        "maxcompute_running_jobs_zero_progress",
        "Running jobs whose progress is 0",
        lambda g: g.zero_progress_jobs,
    ),
    JobMetric(
        "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds",
        "Earliest runningAtTime among the running jobs at progress 0, Unix seconds",
        lambda g: g.zero_progress_oldest_start_seconds,
    ),
)


class JobMetricsCollector(Collector):
    """Job aggregates of every target's current snapshot; a vanished group vanishes here too."""

    def __init__(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        interval: float,
        max_staleness: float = math.inf,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._label_names = label_names
        self._max_staleness = max_staleness
        self._clock = clock
        self._labels = ["region", *label_names, "quota", "project"]
        self._suffix = f" (from a background poll of GetRunningJobs every {interval:g}s)."

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(metric.name, metric.help + self._suffix, labels=self._labels)
            for metric in JOB_METRICS
        ]

    def describe(self) -> Iterator[Metric]:
        # Registering must never trigger a collection (and so never wait on the API).
        return iter(self._families())

    def _samples(self, status: TargetStatus) -> list[tuple[int, list[str], float]]:
        """(metric index, labels, value) of one target's snapshot; unrenderable groups left out."""
        samples = []
        target_values = target_label_values(status.target, self._label_names)
        for key, group in status.snapshot.groups.items() if status.snapshot else ():
            # jobs.parse_job lets no such name through; this keeps one slip from costing a scrape.
            if not (is_renderable(key.quota) and is_renderable(key.project)):
                continue
            labels = [*target_values, key.quota, key.project]
            for index, metric in enumerate(JOB_METRICS):
                value = metric.value(group)
                if value is not None:
                    samples.append((index, labels, value))
        return samples

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        now = self._clock()
        for status in self._store.statuses():
            if status.snapshot is None or is_stale(status, now, self._max_staleness):
                continue
            try:
                samples = self._samples(status)
            except Exception:
                # One target's bad snapshot must not take the others' series down with it.
                log.exception("rendering a target's job metrics failed: left out")
                continue
            for index, labels, value in samples:
                families[index].add_metric(labels, value)
        return iter(families)


class TargetStatusCollector(Collector):
    """``maxcompute_up``, the last-success timestamp, the poll settings and build info."""

    def __init__(
        self,
        store: SnapshotStore,
        label_names: tuple[str, ...],
        interval: float,
        max_staleness: float = math.inf,
    ):
        self._store = store
        self._label_names = label_names
        self._labels = ["region", *label_names]
        self._interval = interval
        self._max_staleness = max_staleness

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "maxcompute_up",
                f"1 if the last poll of GetRunningJobs (every {self._interval:g}s) succeeded, "
                "else 0.",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_last_success_timestamp_seconds",
                "When the last successful poll ended, Unix seconds.",
                labels=self._labels,
            ),
            # Settings as series, so alert rules compare ages with the exporter's own
            # settings instead of constants that are right for one configuration only.
            GaugeMetricFamily(
                "maxcompute_exporter_poll_interval_seconds",
                "How often the target is polled (poll.interval).",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_max_staleness_seconds",
                "How long after its last good poll a failing target's job series are still "
                "served (poll.max_staleness).",
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_build_info",
                "Build information of the exporter; constant 1.",
                labels=["version"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        up, last_success, interval, max_staleness, build_info = families
        for status in self._store.statuses():
            values = target_label_values(status.target, self._label_names)
            up.add_metric(values, 1.0 if status.up else 0.0)
            if status.last_success is not None:
                last_success.add_metric(values, status.last_success)
            interval.add_metric(values, self._interval)
            if math.isfinite(self._max_staleness):
                max_staleness.add_metric(values, self._max_staleness)
        build_info.add_metric([__version__], 1.0)
        return iter(families)


class ExporterMetrics:
    """The exporter's own metrics, on registries of their own (no module globals)."""

    def __init__(
        self,
        store: SnapshotStore,
        targets: tuple[Target, ...],
        label_names: tuple[str, ...],
        interval: float,
        *,
        max_staleness: float = math.inf,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
        top_jobs: int = 0,
    ) -> None:
        self.label_names = label_names
        self.max_staleness = max_staleness
        self.clock = clock
        self.job_registry = CollectorRegistry(auto_describe=True)
        self.job_registry.register(
            JobMetricsCollector(store, label_names, interval, max_staleness, clock)
        )
        if top_jobs > 0:  # off by default: its series grow with the number of targets
            self.job_registry.register(
                TopJobsCollector(
                    store,
                    label_names,
                    lambda target: target_label_values(target, label_names),
                    top_jobs,
                    max_staleness,
                    clock,
                )
            )
        self.self_registry = CollectorRegistry(auto_describe=True)
        self.self_registry.register(
            TargetStatusCollector(store, label_names, interval, max_staleness)
        )
        target_labels = ["region", *label_names]
        self.api_requests = Counter(
            "maxcompute_exporter_api_requests",
            "GetRunningJobs API calls by outcome: HTTP status, or timeout / connection_error.",
            [*target_labels, "code"],
            registry=self.self_registry,
        )
        self.invalid_jobs = Counter(
            "maxcompute_exporter_invalid_jobs",
            "Job records skipped because a field was missing, null or mistyped.",
            target_labels,
            registry=self.self_registry,
        )
        self.progress_out_of_range = Counter(
            "maxcompute_exporter_progress_out_of_range",
            "Job progress values outside 0..1, clamped before summing.",
            target_labels,
            registry=self.self_registry,
        )
        self.poll_errors = Counter(
            "maxcompute_exporter_poll_errors",
            "Failed polls by reason.",
            [*target_labels, "reason"],
            registry=self.self_registry,
        )
        self.poll_duration = Histogram(
            "maxcompute_exporter_poll_duration_seconds",
            "Wall time of a poll of every page of GetRunningJobs, failed polls included.",
            target_labels,
            buckets=POLL_DURATION_BUCKETS,
            registry=self.self_registry,
        )
        self.request_rate = Gauge(
            "maxcompute_exporter_request_rate",
            "Requests per second the exporter currently allows itself against GetRunningJobs: "
            "learned from the service's throttling, at most poll.rate_limit.",
            target_labels,
            registry=self.self_registry,
        )
        self.last_poll_requests = Gauge(
            "maxcompute_exporter_last_poll_requests",
            "GetRunningJobs requests the last poll sent, retries included, failed polls too.",
            target_labels,
            registry=self.self_registry,
        )
        self.slice_rereads = Counter(
            "maxcompute_exporter_slice_rereads",
            "Slices of the submission-time window read again because their answers "
            "contradicted each other (the running list moved under the read).",
            target_labels,
            registry=self.self_registry,
        )
        # Children exist from the start, so rate() and absent() behave before the first event.
        for target in targets:
            values = target_label_values(target, label_names)
            self.invalid_jobs.labels(*values)
            self.progress_out_of_range.labels(*values)
            self.poll_duration.labels(*values)
            self.slice_rereads.labels(*values)
            for reason in REASONS:
                self.poll_errors.labels(*values, reason)
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.self_registry.register(collector)


@dataclass(frozen=True, slots=True)
class RenderedJobs:
    """The job exposition of one published state, plain and as the head of a gzip stream."""

    key: tuple
    plain: bytes
    gzip_head: bytes
    # Compressor state just after the job bytes: each gzip scrape continues a copy of it.
    gzip_state: Any


def start_gzip(data: bytes) -> tuple[bytes, Any]:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data), compressor


EMPTY_RENDERING = RenderedJobs((), b"", *start_gzip(b""))


class MetricsRenderer:
    """The ``/metrics`` body: cached job exposition plus freshly rendered self-metrics.

    The job part (nearly all the bytes) is rendered, and deflated, once per published poll;
    a scrape only renders the small self-metrics and, for gzip, deflates just those on a copy
    of the cached compressor, so the response is still one ordinary gzip member.
    """

    def __init__(self, store: SnapshotStore, metrics: ExporterMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._lock = threading.Lock()
        self._rendered = EMPTY_RENDERING

    def _jobs(self) -> RenderedJobs:
        """Rendered again only when a poll published or a snapshot went stale."""
        now = self._metrics.clock()
        key = (
            self._store.generation,
            tuple(is_stale(s, now, self._metrics.max_staleness) for s in self._store.statuses()),
        )
        rendered = self._rendered
        if key != rendered.key:
            with self._lock:
                rendered = self._rendered
                if key != rendered.key:
                    # Let the old exposition go first: it is stale, every scrape now waits
                    # for the new one, and two at once would set the peak memory.
                    self._rendered = rendered = EMPTY_RENDERING
                    plain = self._render_job_registry()
                    rendered = self._rendered = RenderedJobs(key, plain, *start_gzip(plain))
        return rendered

    def _render_job_registry(self) -> bytes:
        """The job exposition, or nothing if it cannot be rendered: the self-metrics still are."""
        try:
            return generate_latest(self._metrics.job_registry)
        except Exception:
            log.exception("rendering the job metrics failed: serving the exporter's own only")
            return b""

    def job_exposition(self) -> bytes:
        return self._jobs().plain

    def render(self) -> bytes:
        return b"".join(self.render_parts())

    def render_parts(self) -> tuple[bytes, bytes]:
        """The plain body in two parts, so a server can send them without joining 1 MB."""
        return self._jobs().plain, generate_latest(self._metrics.self_registry)

    def render_gzip(self) -> bytes:
        """The same body as ``render()``, gzip-compressed."""
        rendered = self._jobs()
        compressor = rendered.gzip_state.copy()
        tail = compressor.compress(generate_latest(self._metrics.self_registry))
        return rendered.gzip_head + tail + compressor.flush()
