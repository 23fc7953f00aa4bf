"""The configuration as immutable data: targets, poll and metrics settings, static keys.

Every layer reads these; they import nothing of the exporter's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.config.credentials import CredentialSpec


@dataclass(frozen=True, slots=True)
class Credentials:
    """An AccessKey pair, optionally with an STS security token. Secrets never print."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Target:
    """One account and region to poll, with the constant labels its series carry."""

    region: str
    endpoint: str
    # Static keys, or the source to resolve them from (see exporter.api.credentials).
    credentials: Credentials | CredentialSpec
    quotas: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """A short identity for logs: region plus constant labels."""
        extra = ",".join(f"{k}={v}" for k, v in self.labels)
        return f"{self.region}{{{extra}}}" if extra else self.region


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How each target is polled: interval, window, concurrency, timeouts, retries, rate."""

    interval: float = 60.0
    window: float = 86400.0
    # The ceiling of requests in flight; below it Little's law sets them (rate x latency).
    page_concurrency: int = 32
    timeout: float = 10.0
    retries: int = 3
    retry_backoff: float = 0.5
    rate_limit: float = 1000.0
    # None: derived from interval (see ``effective_deadline``, ``effective_max_staleness``).
    deadline: float | None = None
    max_staleness: float | None = None

    @property
    def effective_deadline(self) -> float:
        """A poll's total time limit: 90% of the interval unless configured."""
        return self.deadline if self.deadline is not None else self.interval * 0.9

    @property
    def effective_max_staleness(self) -> float:
        """How long a failed target's last good snapshot is served: 3 intervals by default."""
        return self.max_staleness if self.max_staleness is not None else self.interval * 3


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """What the metrics add beyond the aggregates: the opt-in per-job view."""

    # 0: the per-job view is off; N: each target's top N jobs by CU share and by run time.
    top_jobs: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration: targets, poll settings, metric settings."""

    targets: tuple[Target, ...]
    poll: PollSettings
    metrics: MetricsSettings = MetricsSettings()

    @property
    def constant_label_names(self) -> tuple[str, ...]:
        """Union of all targets' constant label names; a target without one exports ''."""
        return tuple(sorted({name for t in self.targets for name, _ in t.labels}))
