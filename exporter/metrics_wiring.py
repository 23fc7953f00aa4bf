"""The metrics of one configuration's exporter, assembled from its settings and, on a reload,
from what the running exporter's metrics carry over.
"""

from __future__ import annotations

from exporter.config import Config
from exporter.metrics.registries import ConsumptionOptions, ExporterMetrics
from exporter.metrics.shard_info import ShardInfoCollector
from exporter.polling.derive.counter_fold import FoldLimits
from exporter.polling.publish.quota_snapshot import QuotaStore
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.reload_carry import ReloadCarry


def exporter_metrics(
    config: Config,
    store: SnapshotStore,
    quota_store: QuotaStore,
    last: ExporterMetrics | None,
    carry: ReloadCarry,
) -> ExporterMetrics:
    """The metrics of ``config``'s exporter; on a reload, what ``carry`` keeps of the running
    exporter's metrics ``last`` (its trackers always, its counters where the settings are the
    same), and the replica's shard."""
    metrics = ExporterMetrics(
        store,
        config.targets,
        config.constant_label_names,
        config.poll.interval,
        max_staleness=config.poll.effective_max_staleness,
        top_jobs=config.metrics.top_jobs,
        job_changes=config.metrics.job_changes,
        queue_wait_buckets=config.metrics.queue_wait_buckets,
        run_time_buckets=config.metrics.run_time_buckets,
        job_tracker=last.job_tracker if last else None,
        quota_store=quota_store,
        quota_poll=config.quota_poll,
        poll_for=config.poll_for,
        counter_limits=FoldLimits.of(config),
        carried_job_changes=carry.job_changes(last and last.job_changes),
        consumption=ConsumptionOptions(
            owners=config.metrics.owner_consumption,
            max_owners=config.metrics.max_owners_per_quota,
            tracker=last.consumption_tracker if last else None,
            carried=carry.consumption(last and last.consumption),
        ),
    )
    metrics.self_registry.register(ShardInfoCollector(config.shard))
    return metrics
