"""The ``/metrics`` body: the job part rendered once per published poll, the rest per scrape.

The job part of the exposition only changes when a poll publishes (or a snapshot goes stale), so
``MetricsRenderer`` renders it once per change and serves those bytes; the small self-metrics
are rendered per scrape.
"""

from __future__ import annotations

import logging
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from prometheus_client import generate_latest

from exporter.metrics.registries import ExporterMetrics
from exporter.polling.snapshot import SnapshotStore

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.collector")

# Level 1: most of the size win for a fraction of the CPU; the job part is compressed per poll.
GZIP_LEVEL = 1


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
    """Renders the ``/metrics`` body: cached job exposition plus freshly rendered self-metrics.

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
        """Rendered again when a poll published, a snapshot went stale or job changes counted."""
        changes = self._metrics.job_changes
        key = (
            self._store.generation,
            self._metrics.staleness.stale_flags(self._store.statuses()),
            # Counted after the snapshot is published: a render between the two is not final.
            changes.generation if changes is not None else 0,
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
