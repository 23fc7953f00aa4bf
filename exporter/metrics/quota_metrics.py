"""The quota poll's series: capacity and plan from ListQuotas, usage from GetQuotaUsage, health.

For example (one level-1 quota and one of its sub-quotas)::

    maxcompute_quota_info{billing_method="subscription",level="1",parent_quota="",plan="day",
                          quota="etl_p",region="cn-hangzhou",scheduler_type="",status="ON"} 1.0
    maxcompute_quota_max_cu{quota="etl_quota",region="cn-hangzhou"} 400.0
    maxcompute_quota_used_cpu_cores{quota="etl_quota",region="cn-hangzhou"} 212.0
    maxcompute_exporter_quota_poll_up{operation="ListQuotas",region="cn-hangzhou"} 1.0

(``info`` is one line in the exposition; wrapped here). A value the API did not give has no
series. A part's results are served while it is up, and for 3 of its intervals after its last
good poll while it fails; then its series are dropped (its health series stay).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.api.wire.quota_usage import USAGE_ACTION
from exporter.api.wire.quotas import LIST_QUOTAS_ACTION, QuotaCapacity
from exporter.config import QuotaPollSettings
from exporter.metrics.families import target_label_values
from exporter.polling.publish.quota_snapshot import PartStatus, QuotaStatus, QuotaStore

# The logger's name is part of every log line (logger=...).
log = logging.getLogger("exporter.collector")

# A failing part's last good results are served this many of its intervals, then dropped.
QUOTA_STALENESS_INTERVALS = 3

CAPACITY = (
    (
        "maxcompute_quota_reserved_cu",
        "Reserved (guaranteed) CUs of the quota, minCU",
        "reserved_cu",
    ),
    ("maxcompute_quota_max_cu", "Most CUs the quota may reach, maxCU", "max_cu"),
    (
        "maxcompute_quota_elastic_reserved_cu",
        "Elastically reserved CUs of the quota, elasticReservedCU (adhocCU in older answers)",
        "elastic_reserved_cu",
    ),
    ("maxcompute_quota_job_max_cu", "Most CUs one job may take, singleJobCULimit", "job_max_cu"),
)
INFO_LABELS = ["parent_quota", "level", "plan", "billing_method", "scheduler_type", "status"]


def info_values(quota: QuotaCapacity) -> list[str]:
    return [
        quota.parent,
        str(quota.level),
        quota.plan,
        quota.billing_method,
        quota.scheduler_type,
        quota.status,
    ]


class QuotaCollector(Collector):
    """Turns each target's quota status into series; a quota no longer listed vanishes here."""

    def __init__(
        self,
        store: QuotaStore,
        label_names: tuple[str, ...],
        settings: QuotaPollSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._label_names = label_names
        self._settings = settings
        self._clock = clock
        self._labels = ["region", *label_names, "quota"]
        self._intervals = {
            LIST_QUOTAS_ACTION: settings.quotas_interval,
            USAGE_ACTION: settings.usage_interval,
        }
        self._operations = [
            op
            for op, on in ((LIST_QUOTAS_ACTION, settings.quotas), (USAGE_ACTION, settings.usage))
            if on
        ]

    def _families(self) -> dict[str, GaugeMetricFamily]:
        listed = (
            f" (from a background poll of ListQuotas every {self._settings.quotas_interval:g}s)."
        )
        used = (
            f" (from a background poll of GetQuotaUsage every {self._settings.usage_interval:g}s)."
        )
        part = ["region", *self._label_names, "operation"]
        families = [
            *(
                GaugeMetricFamily(name, text + listed, labels=self._labels)
                for name, text, _ in CAPACITY
            ),
            GaugeMetricFamily(
                "maxcompute_quota_info",
                "The quota's place and plan, constant 1: parent_quota is '' on level 1" + listed,
                labels=[*self._labels, *INFO_LABELS],
            ),
            GaugeMetricFamily(
                "maxcompute_quota_used_cpu_cores",
                "CPU cores the quota uses, its latest non-null point" + used,
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_quota_requested_cpu_cores",
                "CPU cores the quota's jobs ask for (requestCpu), its latest non-null point" + used,
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_quota_usage_age_seconds",
                "How old the latest used-CPU point is, at the scrape" + used,
                labels=self._labels,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_quota_poll_up",
                "1 if the operation's last poll (ListQuotas, GetQuotaUsage) succeeded, else 0.",
                labels=part,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_quota_poll_last_success_timestamp_seconds",
                "When the operation's last successful poll ended, Unix seconds.",
                labels=part,
            ),
            GaugeMetricFamily(
                "maxcompute_exporter_quota_poll_interval_seconds",
                "How often the operation is polled (quota_poll.quotas_interval, usage_interval).",
                labels=part,
            ),
        ]
        return {family.name: family for family in families}

    def describe(self) -> Iterator[Metric]:
        return iter(self._families().values())

    def _served(self, part: PartStatus, operation: str) -> bool:
        if part.last_success is None:
            return False
        limit = QUOTA_STALENESS_INTERVALS * self._intervals[operation]
        return part.up is True or self._clock() - part.last_success <= limit

    def _health(self, families: dict[str, GaugeMetricFamily], status: QuotaStatus) -> None:
        values = target_label_values(status.target, self._label_names)
        for operation in self._operations:
            part = status.part(operation)
            labels = [*values, operation]
            families["maxcompute_exporter_quota_poll_interval_seconds"].add_metric(
                labels, self._intervals[operation]
            )
            if part.up is not None:
                families["maxcompute_exporter_quota_poll_up"].add_metric(labels, float(part.up))
            if part.last_success is not None:
                families[
                    "maxcompute_exporter_quota_poll_last_success_timestamp_seconds"
                ].add_metric(labels, part.last_success)

    def _capacity(self, families: dict[str, GaugeMetricFamily], status: QuotaStatus) -> None:
        values = target_label_values(status.target, self._label_names)
        for quota in status.quotas:
            labels = [*values, quota.nickname]
            families["maxcompute_quota_info"].add_metric([*labels, *info_values(quota)], 1.0)
            for name, _, field in CAPACITY:
                value = getattr(quota, field)
                if value is not None:
                    families[name].add_metric(labels, value)

    def _usage(self, families: dict[str, GaugeMetricFamily], status: QuotaStatus) -> None:
        values = target_label_values(status.target, self._label_names)
        now = self._clock()
        for quota, usage in status.usage.items():
            labels = [*values, quota]
            if usage.used is not None:
                families["maxcompute_quota_used_cpu_cores"].add_metric(labels, usage.used.cores)
                families["maxcompute_quota_usage_age_seconds"].add_metric(
                    labels, max(0.0, now - usage.used.at)
                )
            if usage.requested is not None:
                families["maxcompute_quota_requested_cpu_cores"].add_metric(
                    labels, usage.requested.cores
                )

    def _target(self, status: QuotaStatus) -> dict[str, GaugeMetricFamily]:
        families = self._families()
        self._health(families, status)
        if self._served(status.part(LIST_QUOTAS_ACTION), LIST_QUOTAS_ACTION):
            self._capacity(families, status)
        if self._served(status.part(USAGE_ACTION), USAGE_ACTION):
            self._usage(families, status)
        return families

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for status in self._store.statuses():
            try:
                own = self._target(status)
            except Exception:
                # One target's bad quota state must not take /metrics down with it.
                log.exception("rendering a target's quota metrics failed: left out")
                continue
            for name, family in own.items():
                families[name].samples.extend(family.samples)
        return iter(families.values())
