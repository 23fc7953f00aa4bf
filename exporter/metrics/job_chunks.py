"""The job exposition, rendered a target at a time: a publication re-renders only its target.

With many targets, each publishing on its own schedule, rendering every target's series again
at each publication would cost one full render per target per interval. Instead each target's
samples are rendered (and deflated) once per snapshot it publishes, one chunk per family, when
it publishes (``prerender``, called by the snapshot store), and the exposition is assembled
from the chunks at the next scrape: for each family, its HELP/TYPE header, then each served
target's samples, as ``generate_latest`` would have written them.

gzip: each chunk is deflated on its own into byte-aligned, non-final blocks (as pigz does), so
the chunks concatenate into one valid deflate stream; the scrape adds the self-metrics as the
final block and the gzip trailer (CRC-32 and length of the whole). The whole body's CRC-32 is
combined from each chunk's, computed when it was rendered (``crc32_combine``): computing it
over the tens of MB of a fleet's body at each assembly was ~900 ``zlib.crc32`` calls, each
letting go of the interpreter and waiting up to a switch interval to get it back while a poll
renders, which stretched an assembly's ~25 ms of CPU to hundreds of ms.
"""

from __future__ import annotations

import logging
import struct
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import generate_latest
from prometheus_client.core import Metric

from exporter.config import Target
from exporter.metrics.crc32_combine import crc32_combine, crc32_shift
from exporter.polling.publish.snapshot import Snapshot, TargetStatus

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.collector")

# Level 1: most of the size win for a fraction of the CPU.
GZIP_LEVEL = 1
# A gzip member's header: deflate, no name, no time, unknown OS (RFC 1952).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


class TargetFamilies(Protocol):
    """A job collector that can render the families of some targets alone."""

    def families_for(self, statuses: Iterable[TargetStatus]) -> Sequence[Metric]: ...


@dataclass(frozen=True, slots=True)
class Chunk:
    """Some exposition bytes, plain and as raw deflate blocks that others may follow; their
    CRC-32 and ``crc32_shift`` of their length, to combine into the CRC of a whole body."""

    plain: bytes
    deflated: bytes
    crc: int
    shift: int


def deflate_chunk(plain: bytes) -> Chunk:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return Chunk(plain, deflated, zlib.crc32(plain), crc32_shift(len(plain)))


def gzip_tail(plain: bytes, crc: int, length: int) -> bytes:
    """The final deflate block holding ``plain``, and the trailer of a stream whose bytes
    before ``plain`` had CRC-32 ``crc`` and ``length``."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    final = compressor.compress(plain) + compressor.flush(zlib.Z_FINISH)
    trailer = struct.pack("<II", zlib.crc32(plain, crc), (length + len(plain)) & 0xFFFFFFFF)
    return final + trailer


class _Families:
    """Families as a registry, for ``generate_latest``."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def family_texts(families: Sequence[Metric]) -> list[tuple[bytes, bytes]]:
    """Each family's (HELP and TYPE lines, sample lines), as ``generate_latest`` writes them."""
    texts = []
    for family in families:
        text = generate_latest(_Families([family]))  # type: ignore[arg-type]
        help_end = text.index(b"\n")
        type_end = text.index(b"\n", help_end + 1) + 1
        texts.append((text[:type_end], text[type_end:]))
    return texts


@dataclass(frozen=True, slots=True)
class JobParts:
    """The assembled job exposition: plain parts, and a gzip stream's head, CRC and length."""

    plain: tuple[bytes, ...]
    gzip_head: bytes
    crc: int
    length: int


EMPTY_PARTS = JobParts((), GZIP_HEADER, 0, 0)


class JobChunks:
    """Each served target's chunks, rendered once per snapshot; assembled per change."""

    def __init__(self, collectors: Sequence[TargetFamilies]) -> None:
        self._collectors = collectors
        # The families' HELP and TYPE lines, rendered at the first assembly.
        self._headers: tuple[Chunk, ...] = ()
        self._cache: dict[Target, tuple[Snapshot, tuple[Chunk, ...]]] = {}
        # Chunks are rendered on publication (the poll's thread) and read by scrapes.
        self._cache_lock = threading.Lock()

    def prerender(self, status: TargetStatus) -> None:
        """Render a newly published status's chunks now, so no scrape has to."""
        self._chunks(status)

    def _families(self, statuses: Sequence[TargetStatus]) -> list[Metric]:
        return [f for collector in self._collectors for f in collector.families_for(statuses)]

    def _chunks(self, status: TargetStatus) -> tuple[Chunk, ...] | None:
        snapshot = status.snapshot
        with self._cache_lock:
            cached = self._cache.get(status.target)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        try:
            texts = family_texts(self._families((status,)))
        except Exception:
            # One target's bad snapshot must not take the others' series down with it.
            log.exception("rendering a target's job metrics failed: left out")
            return None
        chunks = tuple(deflate_chunk(samples) for _, samples in texts)
        with self._cache_lock:
            current = self._cache.get(status.target)
            # A newer snapshot's chunks, rendered meanwhile by another thread, are kept.
            if snapshot is not None and (
                current is None or current[0].completed_at <= snapshot.completed_at
            ):
                self._cache[status.target] = (snapshot, chunks)
        return chunks

    def assemble(self, served: Sequence[TargetStatus]) -> JobParts:
        """The job exposition of ``served``, families in order, targets in order within each."""
        if not self._headers:
            headers = [header for header, _ in family_texts(self._families(()))]
            self._headers = tuple(deflate_chunk(header) for header in headers)
        rendered = (self._chunks(status) for status in served)
        per_target = [chunks for chunks in rendered if chunks is not None]
        kept = {status.target for status in served}
        with self._cache_lock:
            for target in [t for t in self._cache if t not in kept]:
                del self._cache[target]  # a stale or removed target's chunks are not held
        plain: list[bytes] = []
        deflated: list[bytes] = [GZIP_HEADER]
        crc = length = 0
        for index, header in enumerate(self._headers):
            for chunk in (header, *(chunks[index] for chunks in per_target)):
                if chunk.plain:
                    plain.append(chunk.plain)
                    deflated.append(chunk.deflated)
                    crc = crc32_combine(crc, chunk.crc, chunk.shift)
                    length += len(chunk.plain)
        return JobParts(tuple(plain), b"".join(deflated), crc, length)
