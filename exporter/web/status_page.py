"""What is wrong, where people look: the landing page's per-target table and ``/ready``'s 503.

For every target: whether its last poll succeeded, when the last good one ended, the last error
(reason and message, kept after a recovery), how many jobs and (quota, project) groups the last
good poll found, and when the next poll is due. Every value from outside is HTML-escaped.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from exporter import __version__
from exporter.polling.publish.snapshot import SnapshotStore, TargetStatus


def utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def ago(timestamp: float, now: float) -> str:
    return f"{max(0.0, now - timestamp):.0f}s ago"


def failure_text(status: TargetStatus) -> str:
    failure = status.last_failure
    return f"{failure.reason}: {failure.message}" if failure else ""


def not_ready_lines(statuses: tuple[TargetStatus, ...]) -> list[str]:
    """One line per target without a good poll yet, with its last error if it had one."""
    lines = []
    for status in statuses:
        if status.last_success is not None:
            continue
        failure = failure_text(status)
        detail = f"last error {failure}" if failure else "first poll not finished"
        lines.append(f"{status.target.name}: no good poll yet ({detail})")
    return lines


def target_row(status: TargetStatus, now: float, interval: float) -> str:
    snapshot = status.snapshot
    cells = [
        status.target.name,
        "up" if status.up else "DOWN",
        f"{utc(status.last_success)} ({ago(status.last_success, now)})"
        if status.last_success is not None
        else "never",
        f"{failure_text(status)} ({ago(status.last_failure.at, now)})"
        if status.last_failure
        else "none",
        str(snapshot.jobs) if snapshot else "",
        str(len(snapshot.groups)) if snapshot else "",
        # Polls start every interval; one is published at most an interval after it started.
        f"by {utc(status.last_poll + interval)}" if status.last_poll is not None else "now",
    ]
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>\n"


HEADER = (
    "<tr><th>target</th><th>last poll</th><th>last success</th><th>last error</th>"
    "<th>jobs</th><th>groups</th><th>next poll</th></tr>\n"
)


class StatusPage:
    """Renders the landing page and the ``/ready`` report from the store, per request."""

    def __init__(
        self,
        store: SnapshotStore,
        interval: float,
        telemetry_path: str = "/metrics",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._interval = interval
        self._path = html.escape(telemetry_path, quote=True)
        self._clock = clock

    def html(self) -> bytes:
        now = self._clock()
        rows = "".join(
            target_row(s, now, s.target.poll.interval if s.target.poll else self._interval)
            for s in self._store.statuses()
        )
        return (
            "<!DOCTYPE html>\n<html><head><title>MaxCompute Exporter</title>\n"
            "<style>td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}</style>"
            "</head><body>\n<h1>MaxCompute Exporter</h1>\n"
            f"<p>Version {html.escape(__version__)}. Running jobs of Alibaba Cloud MaxCompute, "
            f"from background polls of GetRunningJobs every {self._interval:g}s, by quota and "
            "project.</p>\n"
            f'<ul><li><a href="{self._path}">Metrics</a></li>\n'
            '<li><a href="/healthz">Health</a></li>\n<li><a href="/ready">Readiness</a></li></ul>\n'
            f"<h2>Targets</h2>\n<table>\n{HEADER}{rows}</table>\n"
            f"<p>Rendered {html.escape(utc(now))}.</p>\n</body></html>\n"
        ).encode()

    def not_ready_reasons(self) -> str:
        """The 503 body of ``/ready`` for strangers: reason codes only, no names or messages."""
        reasons = {
            s.last_failure.reason if s.last_failure else "first_poll_pending"
            for s in self._store.statuses()
            if s.last_success is None
        }
        return f"not ready: {', '.join(sorted(reasons))}\n"

    def not_ready(self) -> str:
        """The 503 body of ``/ready``: which targets are not ready, and why."""
        lines = not_ready_lines(self._store.statuses())
        return "not ready:\n" + "".join(f"  {line}\n" for line in lines)
