"""The configuration as immutable data: targets, poll and metrics settings.

Every layer reads these; they import only the credential data beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.config.credential_model import Credentials, CredentialSpec


@dataclass(frozen=True, slots=True)
class Target:
    """One account and region to poll, with the constant labels its series carry."""

    region: str
    endpoint: str
    # Static keys, or the source to resolve them from (see exporter.api.auth.credentials).
    credentials: Credentials | CredentialSpec
    quotas: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # ``targets[].poll``: this target's settings (the top-level ``poll`` with its overrides);
    # None: the top-level ``poll`` as it is. See ``Config.poll_for``.
    poll: PollSettings | None = None

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


# Batch jobs: most wait seconds for CUs, a saturated quota makes them wait minutes to hours.
DEFAULT_QUEUE_WAIT_BUCKETS = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    43200.0, 86400.0,
)  # fmt: skip
# Batch jobs run from seconds to a day; 10 min, 1 h and 6 h are the usual questions.
DEFAULT_RUN_TIME_BUCKETS = (
    10.0, 30.0, 60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0,
    86400.0,
)  # fmt: skip


# Counters of a group gone for an hour are dropped (their slot goes to the groups running now).
DEFAULT_COUNTER_RETENTION = 3600.0
# The least ``metrics.counter_retention``, in longest poll intervals: a group missing from a poll
# or two keeps its series.
MIN_COUNTER_RETENTION_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """What the metrics add beyond the aggregates (the per-job view, jobs over time), and what
    bounds a target's series."""

    # 0: the per-job view is off; N: each target's top N jobs by CU share and by run time.
    top_jobs: int = 0
    # Jobs over time: what started and finished between two good polls (memory per job).
    job_changes: bool = True
    # Upper bounds (seconds) of the histograms' buckets; +Inf is added to each.
    queue_wait_buckets: tuple[float, ...] = DEFAULT_QUEUE_WAIT_BUCKETS
    run_time_buckets: tuple[float, ...] = DEFAULT_RUN_TIME_BUCKETS
    # Per target and quota, the projects with the most CUs keep their series; the rest are
    # summed into project="__other__".
    max_projects_per_quota: int = 500
    # More distinct quotas than this in one poll fail it as too_many_groups.
    max_quotas_per_target: int = 100
    # Counter series (jobs over time, consumption) neither counted nor seen this long are
    # dropped, and the projects named in them re-chosen this often. None: Config.
    # counter_retention's default.
    counter_retention: float | None = None
    # Consumption by jobOwner (maxcompute_owner_cu_share_seconds_total): off, its series grow
    # with the owners; per target and quota at most max_owners_per_quota keep their own.
    owner_consumption: bool = False
    max_owners_per_quota: int = 20


@dataclass(frozen=True, slots=True)
class QuotaPollSettings:
    """The quota poll, beside the running-jobs poll: ListQuotas and GetQuotaUsage, each on its
    own schedule and each switched on or off on its own."""

    quotas: bool = True
    quotas_interval: float = 300.0
    usage: bool = True
    usage_interval: float = 60.0

    @property
    def enabled(self) -> bool:
        return self.quotas or self.usage


@dataclass(frozen=True, slots=True)
class Shard:
    """Which of ``total`` replicas this process is (``--shard``, ``--total-shards``)."""

    index: int = 0
    total: int = 1


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration: targets, poll settings, metric settings."""

    targets: tuple[Target, ...]
    poll: PollSettings
    metrics: MetricsSettings = MetricsSettings()
    quota_poll: QuotaPollSettings = QuotaPollSettings()
    # Sharded: this replica's shard, and the label names of the whole file's targets (so every
    # shard's series carry the same label names as one unsharded exporter's).
    shard: Shard = Shard()
    fleet_label_names: tuple[str, ...] = ()

    @property
    def counter_retention(self) -> float:
        """``metrics.counter_retention``, else 1 h or 10 of the longest poll interval if longer."""
        if self.metrics.counter_retention is not None:
            return self.metrics.counter_retention
        return max(DEFAULT_COUNTER_RETENTION, 10 * self.longest_interval)

    @property
    def longest_interval(self) -> float:
        """The longest ``poll.interval`` of any target (its own, or the top-level one); the
        top-level one where there is no target (a shard that was given none)."""
        intervals = (self.poll_for(target).interval for target in self.targets)
        return max(intervals, default=self.poll.interval)

    def poll_for(self, target: Target) -> PollSettings:
        """The poll settings ``target`` runs with: its own ``poll`` block, else the top-level."""
        return target.poll if target.poll is not None else self.poll

    @property
    def constant_label_names(self) -> tuple[str, ...]:
        """Union of all targets' constant label names; a target without one exports ''."""
        names = {name for t in self.targets for name, _ in t.labels}
        return tuple(sorted(names.union(self.fleet_label_names)))
