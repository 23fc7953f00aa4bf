"""What a window read got: each slice's jobs, and the window's, each job once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import JobFilter, TimeSlice


@dataclass(frozen=True, slots=True)
class SliceRead:
    """The jobs of one slice, read atomically; ``grew`` if it held more than planned.

    ``approximate`` of them were read both ways in ``approximate_parts`` parts of a dense
    second that moved while read: each such part within the changes during its own read.
    ``unseen`` jobs were counted by a ``totalCount`` of a part and shown by no answer; ``unsure``
    names those parts (the same filter within ``piece``).
    """

    piece: TimeSlice
    jobs: tuple[RunningJob, ...]
    invalid: int
    grew: bool
    approximate: int = 0
    approximate_parts: int = 0
    unseen: int = 0
    unsure: tuple[UnsurePart, ...] = ()


@dataclass(frozen=True, slots=True)
class UnsurePart:
    """A part of a dense second whose count says ``unseen`` jobs more than its answers showed."""

    piece: TimeSlice
    part: JobFilter
    unseen: int

    def holds(self, job: RunningJob) -> bool:
        """True if ``job`` belongs to this part (it may be one of the unseen)."""
        return self.piece.contains(job.submitted_at) and self.part.matches(job.quota, job.owner)


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

    @property
    def unseen(self) -> int:
        """Jobs some ``totalCount`` counted that no answer showed: the most the published
        counts can be short by, beyond the approximate parts' changes."""
        return sum(piece.unseen for piece in self.slices)

    @property
    def unsure(self) -> tuple[UnsurePart, ...]:
        return tuple(part for piece in self.slices for part in piece.unsure)
