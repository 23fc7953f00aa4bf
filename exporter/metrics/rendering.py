"""The ``/metrics`` body: the job part rendered once per published poll, the rest per scrape.

The job part of the exposition only changes when a poll publishes (or a snapshot goes stale), so
``MetricsRenderer`` renders it once per change and serves those bytes; the small self-metrics
are rendered per scrape.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from prometheus_client import generate_latest

from exporter.metrics.job_chunks import EMPTY_PARTS, JobChunks, JobParts, gzip_tail
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.collector")


@dataclass(frozen=True, slots=True)
class RenderedJobs:
    """The job exposition of one published state (see ``JobChunks``), and the state's key."""

    key: tuple
    parts: JobParts


EMPTY_RENDERING = RenderedJobs((), EMPTY_PARTS)


class MetricsRenderer:
    """Renders the ``/metrics`` body: cached job exposition plus freshly rendered self-metrics.

    The job part (nearly all the bytes) is assembled, plain and deflated, once per published
    poll or staleness change, from chunks each target renders once per snapshot; a scrape only
    renders the small self-metrics and, for gzip, deflates just those as the stream's end.
    """

    def __init__(self, store: SnapshotStore, metrics: ExporterMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._lock = threading.Lock()
        self._chunks = JobChunks(metrics.job_collectors)
        # Each target's chunks are rendered when it publishes, not by the next scrape.
        store.on_success(self._chunks.prerender)
        self._rendered = EMPTY_RENDERING

    def _jobs(self) -> JobParts:
        """Assembled again only when a poll published or a snapshot went stale."""
        statuses = self._store.statuses()
        key = (self._store.generation, self._metrics.staleness.stale_flags(statuses))
        rendered = self._rendered
        if key == rendered.key:
            return rendered.parts
        # While one scrape renders a new state, the others serve the last one rendered, a few
        # hundred ms older, rather than queue behind it; only the very first render is waited for.
        if not self._lock.acquire(blocking=rendered is EMPTY_RENDERING):
            return rendered.parts
        try:
            rendered = self._rendered
            if key != rendered.key:
                served = tuple(self._metrics.staleness.served(statuses))
                rendered = self._rendered = RenderedJobs(key, self._assemble(served))
        finally:
            self._lock.release()
        return rendered.parts

    def _assemble(self, served: tuple[TargetStatus, ...]) -> JobParts:
        """The job exposition, or nothing if it cannot be assembled: the self-metrics still are."""
        try:
            return self._chunks.assemble(served)
        except Exception:
            log.exception("rendering the job metrics failed: serving the exporter's own only")
            return EMPTY_PARTS

    def job_exposition(self) -> tuple[bytes, ...]:
        return self._jobs().plain

    def render(self) -> bytes:
        return b"".join(self.render_parts())

    def render_parts(self) -> tuple[bytes, ...]:
        """The plain body in parts, so a server can send them without joining them."""
        return (*self._jobs().plain, generate_latest(self._metrics.self_registry))

    def render_gzip(self) -> bytes:
        """The same body as ``render()``, gzip-compressed."""
        jobs = self._jobs()
        tail = gzip_tail(generate_latest(self._metrics.self_registry), jobs.crc, jobs.length)
        return jobs.gzip_head + tail
