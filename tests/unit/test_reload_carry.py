"""What a reload keeps, target by target: given the old and the new configuration, which
targets keep their client (learned rate), their published state, their quota state, and
whether the jobs-over-time and consumption counters go on."""

from __future__ import annotations

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import TimeSlice
from exporter.config import Config, parse_config
from exporter.metrics.consumption import ConsumptionMetrics
from exporter.metrics.job_changes import JobChangeMetrics
from exporter.polling.publish.quota_snapshot import QuotaStore
from exporter.polling.publish.snapshot import PollFailure, Snapshot, SnapshotStore
from exporter.reload_carry import ReloadCarry
from exporter.wiring import Exporter
from tests.support.exposition import values_of
from tests.support.jobs import NOW, make_target

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret"}


def config(a_quotas: str = "[etl]", b_poll: str = "", top: str = "") -> Config:
    return parse_config(
        yaml.safe_load(
            "targets:\n"
            f"  - {{region: cn-hangzhou, endpoint: 'http://127.0.0.1:9', quotas: {a_quotas},"
            " labels: {n: a}}\n"
            "  - {region: cn-hangzhou, endpoint: 'http://127.0.0.1:9', quotas: [adhoc],"
            f" labels: {{n: b}}{b_poll}}}\n"
            f"poll: {{interval: 1m}}\n{top}"
        ),
        ENV,
    )


def published(cfg: Config) -> SnapshotStore:
    store = SnapshotStore(cfg.targets)
    for target in cfg.targets:
        store.publish_success(target, Snapshot({}, 0, completed_at=100.0))
    return store


def kept(carry: ReloadCarry, cfg: Config, old: Config) -> tuple[list[str], list[str], list[str]]:
    """Names of the targets keeping their client, their state, their quota state."""
    clients = [t.name for t in cfg.targets if carry.keeps_client(t)]
    states = [t.name for t in carry.statuses(published(old))]
    quota_states = [t.name for t in carry.quota_statuses(QuotaStore(old.targets))]
    return clients, states, quota_states


def test_only_the_changed_target_starts_over() -> None:
    old, new = config(), config(a_quotas="[etl, sales]")
    carry = ReloadCarry(old, new)
    assert kept(carry, new, old) == (["cn-hangzhou{n=b}"],) * 3
    changes = JobChangeMetrics(("n",), 60.0, (1.0,), (1.0,))
    assert carry.job_changes(changes) is changes


def test_a_target_polled_otherwise_keeps_nothing_of_its_own() -> None:
    old, new = config(), config(b_poll=", poll: {interval: 2m}")
    assert kept(ReloadCarry(old, new), new, old) == (["cn-hangzhou{n=a}"],) * 3


def test_other_metrics_settings_keep_the_clients_only() -> None:
    old, new = config(), config(top="metrics: {top_jobs: 3}\n")
    carry = ReloadCarry(old, new)
    assert kept(carry, new, old) == (["cn-hangzhou{n=a}", "cn-hangzhou{n=b}"], [], [])
    assert carry.job_changes(JobChangeMetrics(("n",), 60.0, (1.0,), (1.0,))) is None


def test_other_quota_poll_settings_keep_all_but_the_quota_state() -> None:
    old, new = config(), config(top="quota_poll: {quotas: false, usage: false}\n")
    names = ["cn-hangzhou{n=a}", "cn-hangzhou{n=b}"]
    assert kept(ReloadCarry(old, new), new, old) == (names, names, [])


def test_at_start_nothing_is_carried() -> None:
    new = config()
    carry = ReloadCarry(None, new)
    assert kept(carry, new, new) == ([], [], [])
    assert carry.job_changes(JobChangeMetrics(("n",), 60.0, (1.0,), (1.0,))) is None


def test_carried_counters_forget_the_targets_a_reload_removed_and_keep_the_others() -> None:
    keep, drop = (
        make_target(labels=(("n", "a"),)),
        make_target(region="cn-beijing", labels=(("n", "b"),)),
    )
    changes = JobChangeMetrics(("n",), 60.0, (1.0,), (1.0,))
    window = TimeSlice(NOW - 3600, NOW)
    later = TimeSlice(NOW - 3540, NOW + 60)
    for target in (keep, drop):
        changes.poll_published(target, window, [])  # a baseline
        started = RunningJob(f"j-{target.region}", "dw", "etl", 0.1, 0.1, 0.5, NOW, NOW + 5)
        changes.poll_published(target, later, [started])
    changes.retain([keep])
    registry = CollectorRegistry()
    registry.register(changes)
    text = generate_latest(registry).decode()
    assert values_of(text, "maxcompute_jobs_started_total") == {
        (("n", "a"), ("project", "dw"), ("quota", "etl"), ("region", "cn-hangzhou")): 1.0
    }
    assert values_of(text, "maxcompute_job_queue_wait_seconds_count") == {
        (("n", "a"), ("quota", "etl"), ("region", "cn-hangzhou")): 1.0
    }


def test_consumption_counters_go_on_on_the_same_terms_as_jobs_over_time() -> None:
    counters = ConsumptionMetrics(("n",), 60.0)
    old = config()
    assert ReloadCarry(old, config(a_quotas="[etl, sales]")).consumption(counters) is counters
    assert ReloadCarry(old, config(top="metrics: {top_jobs: 3}\n")).consumption(counters) is None
    assert ReloadCarry(None, old).consumption(counters) is None


def test_carried_consumption_forgets_the_targets_a_reload_removed_and_keeps_the_others() -> None:
    keep, drop = (
        make_target(labels=(("n", "a"),)),
        make_target(region="cn-beijing", labels=(("n", "b"),)),
    )
    counters = ConsumptionMetrics(("n",), 60.0)
    job = RunningJob("j", "dw", "etl", 0.5, 0.25, 0.5, NOW - 100, NOW - 50)
    for target in (keep, drop):
        counters.poll_published(target, TimeSlice(NOW - 3600, NOW), [job])
        counters.poll_published(target, TimeSlice(NOW - 3540, NOW + 60), [job])
    counters.retain([keep])
    assert counters.tracker.last(drop) is None and counters.tracker.last(keep) is not None
    registry = CollectorRegistry()
    registry.register(counters)
    text = generate_latest(registry).decode()
    assert values_of(text, "maxcompute_cu_share_seconds_total") == {
        (("n", "a"), ("project", "dw"), ("quota", "etl"), ("region", "cn-hangzhou")): 30.0
    }


async def test_a_kept_quota_poll_is_next_due_an_interval_after_it_last_ended() -> None:
    """A reload of one target does not send every other target's quota requests at once."""
    quota_poll = (
        "quota_poll: {quotas: true, usage: true, quotas_interval: 10m, usage_interval: 1m}\n"
    )
    old = Exporter(config(top=quota_poll))
    try:
        for target in old.config.targets:
            old.quota_store.publish_quotas(target, (), at=1_000.0)
            old.quota_store.publish_usage(target, {}, at=1_010.0)
        b = old.config.targets[1]
        old.quota_store.publish_failure(b, "GetQuotaUsage", PollFailure("timeout", "late", 1_030.0))
        new = Exporter(config(a_quotas="[etl, sales]", top=quota_poll), previous=old)
        try:
            due = {poll.name: poll.first_at for poll in new.other_polls}
        finally:
            await new.aclose()
    finally:
        await old.aclose()
    assert due == {
        "ListQuotas cn-hangzhou{n=a}": None,  # changed: polled at once
        "GetQuotaUsage cn-hangzhou{n=a}": None,
        "ListQuotas cn-hangzhou{n=b}": 1_000.0 + 600,
        "GetQuotaUsage cn-hangzhou{n=b}": 1_030.0 + 60,  # its last poll, which failed, + 1m
    }
