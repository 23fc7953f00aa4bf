"""The counters' exposition, rendered a target at a time when its counters change.

Jobs over time and consumption change only when a target's poll is published; with a fleet,
their series are most of the exporter's own bytes (each target's thousand groups, four counters
each, plus its histograms), so rendering them all on every scrape cost seconds. Each counter
collector keeps a ``CounterChunks``: when a target's counters change, that target's samples are
rendered (and deflated) once, one chunk per family; a scrape stitches, for each family, its
HELP/TYPE header and each target's samples in the order ``collect()`` sorts them, so the
stitched bytes equal ``generate_latest`` of the collector.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client.core import Metric

from exporter.metrics.job_chunks import Chunk, deflate_chunk, family_texts

TargetValues = tuple[str, ...]


class RenderedCounters(Protocol):
    """A counter collector that keeps each target's samples rendered (``CounterChunks``)."""

    @property
    def chunks(self) -> CounterChunks: ...


class CounterChunks:
    """Each target's counter samples, rendered and deflated once per change of its counters.

    ``version`` moves on at every change, so a renderer knows when to stitch again.
    """

    def __init__(self, families: Sequence[Metric]) -> None:
        # The families' HELP and TYPE lines: the settings fix them for the collector's life.
        self.headers = tuple(deflate_chunk(header) for header, _ in family_texts(families))
        self._targets: dict[TargetValues, tuple[Chunk, ...]] = {}
        self._lock = threading.Lock()
        self.version = 0
        # How many times a target's samples were rendered: a scrape renders none.
        self.renders = 0

    def render(self, values: TargetValues, families: Sequence[Metric]) -> None:
        """``families`` hold the samples of target ``values`` alone: keep them rendered."""
        chunks = tuple(deflate_chunk(samples) for _, samples in family_texts(families))
        with self._lock:
            self._targets[values] = chunks
            self.version += 1
            self.renders += 1

    def retain(self, kept: Iterable[TargetValues]) -> None:
        """Drop the samples of every target but ``kept``."""
        keep = set(kept)
        with self._lock:
            self._targets = {v: c for v, c in self._targets.items() if v in keep}
            self.version += 1

    def ordered(self) -> tuple[int, list[tuple[Chunk, ...]]]:
        """The version and each target's chunks, targets sorted as ``collect()`` sorts them."""
        with self._lock:
            return self.version, [chunks for _, chunks in sorted(self._targets.items())]


def stitched(collectors: Iterable[RenderedCounters]) -> list[Chunk]:
    """The exposition of ``collectors``: per family its header, then each target's samples."""
    parts: list[Chunk] = []
    for collector in collectors:
        _, per_target = collector.chunks.ordered()
        for index, header in enumerate(collector.chunks.headers):
            parts.append(header)
            parts.extend(chunks[index] for chunks in per_target if chunks[index].plain)
    return parts


def versions(collectors: Iterable[RenderedCounters]) -> tuple[int, ...]:
    """What changes whenever the stitched exposition of ``collectors`` would."""
    return tuple(collector.chunks.version for collector in collectors)
