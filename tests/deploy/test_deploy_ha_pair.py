"""Two exporter replicas with one configuration, scraped by one real Prometheus, give the
same recorded values and the same alerts as one replica scraped by another.

One simulator serves jobs that make several shipped alerts true at once (a quota at 0.9 of
its CUs, a job queued 2 hours, one running 7 hours, one at progress 0 for 2 hours) and a
second target fails every poll. Prometheus "pair" scrapes both replicas, Prometheus "single"
scrapes one; both load ``deploy/prometheus/rules.yml``. Pending alerts are compared: the
alerts' ``for:`` is minutes, and pending is where a doubled series would first show.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml

from exporter.demo.quota_simulator import Level1Quota, QuotaCatalog, SubQuota
from exporter.demo.simulator import ApiSimulator
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import samples
from tests.support.jobs import job_record
from tests.support.prometheus_process import Prometheus, result_of, wait_for
from tests.support.tools import ROOT, free_port
from tests.support.waiting import eventually

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
KEY_ID, SECRET = "LTAIhapair", "ha-pair-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
NOW = int(time.time())
JOBS = [
    job_record(
        "full-1", quota="etl_quota", project="a", cu=0.5, submitted=NOW - 600, running=NOW - 500
    ),
    job_record(
        "full-2", quota="etl_quota", project="b", cu=0.4, submitted=NOW - 600, running=NOW - 500
    ),
    job_record(
        "queued", quota="adhoc_quota", project="c", cu=0.1, submitted=NOW - 9000, running=NOW - 60
    ),
    job_record(
        "long", quota="adhoc_quota", project="d", cu=0.1, submitted=NOW - 25300, running=NOW - 25200
    ),
    job_record(
        "stuck",
        quota="adhoc_quota",
        project="e",
        progress=0.0,
        submitted=NOW - 7300,
        running=NOW - 7200,
    ),
]
EXPECTED_ALERTS = {
    "MaxComputeQuotaCUSaturation",
    "MaxComputeJobsQueueingLong",
    "MaxComputeJobRunningLong",
    "MaxComputeJobStuckAtZeroProgress",
    "MaxComputePollsFailing",
    # The quota poll: etl_quota uses 90 of its 60 reserved CUs; the second target's fails.
    "MaxComputeQuotaReservedCUExhausted",
    "MaxComputeQuotaPollsFailing",
}
# The quota poll's view of the same quotas, so the capacity rules are compared too.
QUOTAS = QuotaCatalog(
    (
        Level1Quota(
            "prod_p",
            (SubQuota("etl_quota", min_cu=60, max_cu=100), SubQuota("adhoc_quota", max_cu=50)),
            min_cu=80,
            max_cu=150,
        ),
    )
)


# Rates of the jobs-over-time counters: a fixed job list starts and finishes nothing, and a
# short run has too few samples for increase(); their de-duplication has its promtool tests.
HISTORY_GROUPS = {"maxcompute.jobs_over_time"}


def recorded_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [
        rule["record"]
        for group in groups
        if group["name"] not in HISTORY_GROUPS
        for rule in group["rules"]
        if "record" in rule
    ]


def without_instance(result: list[dict]) -> dict[tuple, float]:
    """Each series by its labels but instance, to its value; a doubled series would collide."""
    out: dict[tuple, float] = {}
    for series in result:
        labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "instance"))
        assert labels not in out, f"two series differ only in instance: {labels}"
        out[labels] = float(series["value"][1])
    return out


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[list[ExporterProcess], Prometheus, Prometheus]]:
    workdir = tmp_path_factory.mktemp("ha")
    simulator = ApiSimulator(JOBS, credentials={KEY_ID: (SECRET, None)}, quotas=QUOTAS).start()
    config = workdir / "config.yaml"
    config.write_text(
        "poll: {interval: 2s, timeout: 500ms, window: 12h}\n"
        "targets:\n"
        f"  - {{region: cn-hangzhou, endpoint: '{simulator.url}'}}\n"
        f"  - {{region: cn-beijing, endpoint: 'http://127.0.0.1:{free_port()}'}}\n"
    )
    replicas = [ExporterProcess("--config", str(config), env=ENV) for _ in range(2)]
    started: list[Prometheus] = []
    try:
        for replica in replicas:
            replica.wait_until("/metrics")
        addresses = [f"127.0.0.1:{replica.port}" for replica in replicas]
        for name, targets in (("pair", addresses), ("single", addresses[:1])):
            (workdir / name).mkdir()
            started.append(Prometheus(workdir / name, targets, RULES))
        yield replicas, started[0], started[1]
    finally:
        for server in started:
            server.stop()
        for replica in replicas:
            replica.stop()
        simulator.stop()


def test_two_replicas_expose_the_same_series(servers) -> None:
    replicas, _, _ = servers

    def job_series(replica: ExporterProcess) -> dict[tuple, float]:
        return {
            (s.name, *sorted(s.labels.items())): s.value
            for s in samples(replica.get("/metrics").text)
            if s.name.startswith("maxcompute_")
            and "timestamp" not in s.name
            and not s.name.startswith(
                # Each replica's own progress: where its polls are now, not what it exports.
                (
                    "maxcompute_exporter_poll_duration",
                    "maxcompute_exporter_api",
                    "maxcompute_exporter_quota_",
                )
            )
            and s.name != "maxcompute_exporter_request_rate"
        }

    def polled_every_target(replica: ExporterProcess) -> bool:
        polls = {
            s.labels["region"]: s.value
            for s in samples(replica.get("/metrics").text)
            if s.name == "maxcompute_exporter_poll_duration_seconds_count"
        }
        return polls.keys() == {"cn-hangzhou", "cn-beijing"} and min(polls.values()) >= 1

    # Series a poll's end creates (last_poll_requests of the failing target) exist once each
    # replica has ended its first poll of each target; on a busy machine one may lag.
    for replica in replicas:
        eventually("a first poll of every target", lambda r=replica: polled_every_target(r))
    first, second = (job_series(replica) for replica in replicas)
    assert set(first) == set(second)  # no per-process label anywhere
    running = {k: v for k, v in first.items() if k[0] == "maxcompute_running_jobs"}
    assert running == {k: v for k, v in second.items() if k[0] == "maxcompute_running_jobs"}
    assert len(running) == 5


def test_the_rules_give_the_same_values_and_alerts_with_one_replica_or_two(servers) -> None:
    _, pair, single = servers
    for prometheus in (pair, single):
        wait_for(
            "every expected alert pending or firing",
            lambda p=prometheus: (
                {a["metric"]["alertname"] for a in result_of(p, "ALERTS")} >= EXPECTED_ALERTS
            ),
            60,
            prometheus.check_running,
            prometheus.log_tail,
        )
        wait_for(
            "both replicas scraped",
            lambda p=prometheus: (
                len(result_of(p, 'up{job="maxcompute-exporter"} == 1')) == (2 if p is pair else 1)
            ),
            30,
            prometheus.check_running,
        )
    for name in recorded_names():
        if "deriv" in name or "time_to_saturation" in name:
            continue  # need 10 evaluations of history: absent on both in a short run
        if name.endswith((":timestamp_seconds", ":rise5m")):
            continue  # read off each server's own evaluation times: equal only by chance
        if "plan_switch" in name:
            continue  # only where a plan changed: never in a fixed catalog
        if name.startswith("maxcompute:project_cu"):
            # Increases of the consumption counters, which grow with time: each server's reads
            # them off its own scrapes, equal only by chance. rules_test.yml shows two replicas
            # whose counters started apart give one replica's value.
            continue
        # Gauges of a fixed job list: the same value whenever it is read (up to the rounding
        # of averages over a different number of samples).
        paired, alone = (
            without_instance(result_of(pair, name)),
            without_instance(result_of(single, name)),
        )
        assert paired.keys() == alone.keys() and paired, name
        assert all(paired[k] == pytest.approx(alone[k], rel=1e-12) for k in paired), name
    alerts_pair = without_instance(result_of(pair, "ALERTS"))
    alerts_single = without_instance(result_of(single, "ALERTS"))
    assert set(alerts_pair) == set(alerts_single)
    assert {dict(labels)["alertname"] for labels in alerts_pair} == EXPECTED_ALERTS


def test_the_shipped_ha_config_labels_its_replica_and_scrapes_both_exporters() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-ha.yml").read_text())
    assert config["global"]["external_labels"]["replica"] == "a"
    assert "cluster" in config["global"]["external_labels"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "maxcompute-exporter"  # what the rules select
    (targets,) = (static["targets"] for static in job["static_configs"])
    assert len(targets) == 2
