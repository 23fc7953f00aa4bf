"""What a window read got: each slice's jobs, and the window's, each job once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice


@dataclass(frozen=True, slots=True)
class SliceRead:
    """The jobs of one slice, read atomically; ``grew`` if it held more than planned.

    ``approximate`` of them were read both ways in ``approximate_parts`` parts of a dense
    second that moved while read: each such part within the changes during its own read.
    """

    piece: TimeSlice
    jobs: tuple[RunningJob, ...]
    invalid: int
    grew: bool
    approximate: int = 0
    approximate_parts: int = 0


@dataclass(frozen=True, slots=True)
class WindowRead:
    """Every slice of a window, read consistently: the window's running jobs, each once."""

    window: TimeSlice
    slices: tuple[SliceRead, ...]
    requests: int
    rereads: int

    def jobs(self) -> Iterator[RunningJob]:
        for piece in self.slices:
            yield from piece.jobs

    @property
    def invalid(self) -> int:
        return sum(piece.invalid for piece in self.slices)

    @property
    def moving(self) -> list[TimeSlice]:
        return [piece.piece for piece in self.slices if piece.grew]

    @property
    def approximate(self) -> int:
        """Jobs read both ways in parts that moved while read (within their bound)."""
        return sum(piece.approximate for piece in self.slices)

    @property
    def approximate_parts(self) -> int:
        return sum(piece.approximate_parts for piece in self.slices)
