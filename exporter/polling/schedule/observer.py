"""What a poll reports upward, through a small protocol the metrics implement.

Polling never imports the metrics: a poller calls its observer as things happen and does not
know whether they become counters, log lines or nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Target
from exporter.polling.derive.job_changes import UnseenJobs


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one finished poll, good or failed, reports."""

    seconds: float
    # Requests the poll's read sent, retries included; None when no read started.
    requests: int | None
    rereads: int
    request_rate: float
    # The failure's reason (one of ``api.errors.REASONS``); None when the poll succeeded.
    failure: str | None = None
    invalid_jobs: int = 0
    progress_out_of_range: int = 0
    # Jobs read both ways in parts of dense seconds that moved while read, and those parts.
    approximate_jobs: int = 0
    approximate_parts: int = 0
    # Jobs a totalCount counted that no answer showed: the most the counts are short by.
    unseen_jobs: int = 0


class PollObserver(Protocol):
    """Told what a poller does: each request's outcome, the learned rate, each poll's end."""

    def request_sent(self, target: Target, code: str) -> None:
        """One API request ended: its HTTP status, or ``timeout`` / ``connection_error``."""

    def rate_learned(self, target: Target, requests_per_second: float) -> None:
        """The request rate the poller now allows itself."""

    def poll_ended(self, target: Target, outcome: PollOutcome) -> None:
        """A poll ended, before its snapshot or failure is published."""

    def poll_published(
        self,
        target: Target,
        window: TimeSlice,
        jobs: Iterable[RunningJob],
        unseen: tuple[UnseenJobs, ...] = (),
    ) -> None:
        """A good poll's snapshot is published: the window it read and its jobs (iterate them
        now, once), for the steps derived from successive polls (what started, what finished),
        and the jobs its counts said were there that no answer showed. A failed poll is never
        reported here."""
