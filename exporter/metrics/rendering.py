"""The ``/metrics`` body: the job part and the counters rendered once per published poll, the
rest per scrape.

The job part of the exposition only changes when a poll publishes (or a snapshot goes stale),
and the counters of jobs over time and consumption only when a poll is published, so
``MetricsRenderer`` renders them once per change and serves those bytes; the small
self-metrics are rendered per scrape.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from exporter.metrics.counter_chunks import stitched, versions
from exporter.metrics.crc32_combine import crc32_combine
from exporter.metrics.job_chunks import (
    EMPTY_PARTS,
    JobChunks,
    JobParts,
    gzip_tail,
)
from exporter.metrics.registries import ExporterMetrics
from exporter.metrics.self_exposition import SelfExposition
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.collector")


@dataclass(frozen=True, slots=True)
class RenderedJobs:
    """The exposition of one published state, and the state's key: the job part (see
    ``JobChunks``), and it followed by the counters (``parts``)."""

    key: tuple
    jobs: JobParts
    parts: JobParts


EMPTY_RENDERING = RenderedJobs((), EMPTY_PARTS, EMPTY_PARTS)


class MetricsRenderer:
    """Renders the ``/metrics`` body: cached job exposition plus freshly rendered self-metrics.

    The job part and the counters (nearly all the bytes) are assembled, plain and deflated,
    once per published poll or staleness change, from chunks each target renders once per
    snapshot and per change of its counters; a scrape only renders the small self-metrics and,
    for gzip, deflates just those as the stream's end.
    """

    def __init__(self, store: SnapshotStore, metrics: ExporterMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._lock = threading.Lock()
        self._chunks = JobChunks(metrics.job_collectors)
        # Each target's chunks are rendered when it publishes, not by the next scrape.
        store.on_success(self._chunks.prerender)
        self._rendered = EMPTY_RENDERING
        self._own = SelfExposition(metrics.self_registry)

    def _jobs(self) -> JobParts:
        return self._rendering().parts

    def _rendering(self) -> RenderedJobs:
        """Assembled again only when a poll published or a snapshot went stale."""
        statuses = self._store.statuses()
        counters = versions(self._metrics.counter_collectors)
        key = (self._store.generation, self._metrics.staleness.stale_flags(statuses), counters)
        rendered = self._rendered
        if key == rendered.key:
            return rendered
        # While one scrape renders a new state, the others serve the last one rendered, a few
        # hundred ms older, rather than queue behind it; only the very first render is waited for.
        if not self._lock.acquire(blocking=rendered is EMPTY_RENDERING):
            return rendered
        try:
            rendered = self._rendered
            if key != rendered.key:
                served = tuple(self._metrics.staleness.served(statuses))
                jobs = self._assemble(served)
                parts = with_counters(jobs, self._metrics)
                rendered = self._rendered = RenderedJobs(key, jobs, parts)
        finally:
            self._lock.release()
        return rendered

    def _assemble(self, served: tuple[TargetStatus, ...]) -> JobParts:
        """The job exposition, or nothing if it cannot be assembled: the self-metrics still are."""
        try:
            return self._chunks.assemble(served)
        except Exception:
            log.exception("rendering the job metrics failed: serving the exporter's own only")
            return EMPTY_PARTS

    def job_exposition(self) -> tuple[bytes, ...]:
        """The job part alone, as cached (without the counters)."""
        return self._rendering().jobs.plain

    def render(self) -> bytes:
        return b"".join(self.render_parts())

    def render_parts(self) -> tuple[bytes, ...]:
        """The plain body in parts, so a server can send them without joining them."""
        return (*self._jobs().plain, self._own.render())

    def render_gzip(self) -> bytes:
        """The same body as ``render()``, gzip-compressed."""
        jobs = self._jobs()
        tail = gzip_tail(self._own.render(), jobs.crc, jobs.length)
        return jobs.gzip_head + tail


def with_counters(jobs: JobParts, metrics: ExporterMetrics) -> JobParts:
    """``jobs`` followed by the counters' exposition, stitched from each target's chunks."""
    plain, deflated = list(jobs.plain), [jobs.gzip_head]
    crc, length = jobs.crc, jobs.length
    for chunk in stitched(metrics.counter_collectors):
        plain.append(chunk.plain)
        deflated.append(chunk.deflated)
        crc = crc32_combine(crc, chunk.crc, chunk.shift)
        length += len(chunk.plain)
    return JobParts(tuple(plain), b"".join(deflated), crc, length)
