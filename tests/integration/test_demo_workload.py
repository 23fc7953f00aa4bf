"""The --demo workload: deterministic phases, and (through promtool and the shipped rules) every
alert about MaxCompute firing within the first cycle, then recovering."""

from __future__ import annotations

import subprocess
from collections import defaultdict

import yaml

from exporter.api.wire.jobs import parse_job
from exporter.demo.launch import demo_quotas
from exporter.demo.quota_simulator import used_cores
from exporter.demo.simulator import Faults
from exporter.demo.workload import (
    CYCLE_SECONDS,
    DEMO_PROJECTS,
    DEMO_QUOTAS,
    OUTAGE,
    RAMP,
    faults_at,
    phased_workload,
    quota_level,
    served_level,
)
from exporter.polling.derive.aggregation import GroupAggregate, aggregate
from tests.support.tools import ROOT, promtool

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
START = 1_800_000_000  # any start: the phases count from it
POLL = 15  # --demo's poll.interval
MAX_STALENESS = 45  # --demo's poll.max_staleness (3 x interval)
SCRAPE = 30  # the compose stack's scrape and evaluation interval
# Alerts about Prometheus scraping the exporter: no workload can make them true.
SCRAPE_ALERTS = {"MaxComputeExporterDown", "MaxComputeExporterAbsent"}
# Alerts that need more than the 13.5-minute cycle; rules_test.yml shows them firing: the
# queue-wait alert (15 minutes of waiting starts) and the two-hour prediction (its trend is
# the hour's, from 50 minutes of data: a 20-minute wave or a wobble is no trend).
LONGER_THAN_A_CYCLE = {"MaxComputeJobsWaitingForCUs", "MaxComputeQuotaCUSaturationPredicted"}


def quota_sums(now: int) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for record in phased_workload(START)(now):
        sums[record["quotaNickname"]] += record["cuSnapshot"]
    return dict(sums)


def test_same_moment_same_jobs_sorted_by_submission() -> None:
    workload = phased_workload(START)
    jobs = workload(START + 100)
    assert jobs == phased_workload(START)(START + 100)
    assert jobs == sorted(jobs, key=lambda r: (r["submittedAtTime"], r["instanceId"]))
    assert len({r["instanceId"] for r in jobs}) == len(jobs)
    assert {r["project"] for r in jobs} == set(DEMO_PROJECTS)
    assert {r["quotaNickname"] for r in jobs} == set(DEMO_QUOTAS)
    assert all(parse_job(r, START + 100) is not None for r in jobs)
    # Time moves the jobs on: some finish and others start.
    later = {r["instanceId"] for r in workload(START + 400)}
    assert later != {r["instanceId"] for r in jobs}


def test_phases_of_the_saturating_quota() -> None:
    assert quota_level("etl_quota", 0) == 0.55
    assert quota_level("etl_quota", 185) == 0.775  # 8.7 points a minute, halfway
    assert quota_level("etl_quota", 400) == 1.0
    assert quota_level("etl_quota", 600) == 0.55
    assert quota_level("ml_quota", 400) == 0.65
    for elapsed in range(0, CYCLE_SECONDS, POLL):
        sums = quota_sums(START + elapsed)
        # Each job's share is rounded to 4 places (40 of them: 0.002 at most); problem jobs add
        # 0.04 to ml and 0.02 to adhoc.
        served = served_level("etl_quota", elapsed, START + elapsed)
        assert abs(sums["etl_quota"] - served) <= 0.002
        if RAMP[0] <= elapsed < RAMP[1]:
            # A steady rise (a scheduler's burst), no wobble: the page must lead it.
            assert served == quota_level("etl_quota", elapsed)
        else:
            # Elsewhere the wobble stays within 0.05 of the level, never above full.
            assert abs(served - quota_level("etl_quota", elapsed)) <= 0.05 + 1e-9
            assert served <= 1.0
        assert 0.35 < sums["adhoc_quota"] < 0.55 and 0.55 < sums["ml_quota"] < 0.75


def test_problem_jobs_and_faults_by_phase() -> None:
    def named(now: int, word: str) -> list[dict]:
        return [r for r in phased_workload(START)(now) if word in r["instanceId"]]

    assert named(START + 10, "stuck") == []
    (stuck,) = named(START + 60, "stuck")
    assert stuck["progress"] == 0 and START + 60 - stuck["runningAtTime"] > 3600
    (queued,) = named(START + 60, "queued")
    assert queued["runningAtTime"] - queued["submittedAtTime"] > 1800
    (long,) = named(START + 60, "long")
    assert START + 60 - long["runningAtTime"] > 6 * 3600
    assert named(START + 600, "stuck") == []
    assert faults_at(100) == Faults()
    assert faults_at(560) == Faults(throttle=0.5)
    assert faults_at(600) == Faults(server_error=1.0)
    assert faults_at(CYCLE_SECONDS + 10) == Faults()


# --- the demo through the shipped rules ----------------------------------------------------

GROUP_METRICS = {
    "maxcompute_running_jobs": lambda g: g.running_jobs,
    "maxcompute_running_jobs_cu_ratio": lambda g: g.cu_ratio,
    "maxcompute_running_jobs_memory_ratio": lambda g: g.memory_ratio,
    "maxcompute_running_jobs_progress_sum_ratio": lambda g: g.progress_sum,
    "maxcompute_running_jobs_zero_progress": lambda g: g.zero_progress_jobs,
    "maxcompute_running_jobs_max_queue_seconds": lambda g: g.max_queue_seconds,
    # Timestamps relative to START: promtool's clock starts at 0.
    "maxcompute_running_jobs_oldest_start_timestamp_seconds": (
        lambda g: g.oldest_start_seconds - START
    ),
    "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds": (
        lambda g: (
            None
            if g.zero_progress_oldest_start_seconds is None
            else g.zero_progress_oldest_start_seconds - START
        )
    ),
}
TARGET = 'job="maxcompute-exporter",instance="demo:10181",region="cn-hangzhou"'


def exporter_scrapes(duration: int) -> dict[str, list[str]]:
    """What the compose Prometheus scrapes from --demo, every 30 s: {series: values}.

    Models the exporter: a poll every 15 s; a poll during the outage fails, sets
    maxcompute_up to 0 and keeps the last good job series for max_staleness, then drops them.
    """
    workload = phased_workload(START)
    series: dict[str, dict[int, float]] = defaultdict(dict)
    last_good: tuple[int, dict] | None = None
    for step, now in enumerate(range(START, START + duration + 1, SCRAPE)):
        up = faults_at((now - START) % CYCLE_SECONDS).server_error < 1.0
        if up:
            result = aggregate(parse_job(r, now) for r in workload(now))
            last_good = (now, result.groups)
        labels = TARGET
        series[f"maxcompute_up{{{labels}}}"][step] = 1.0 if up else 0.0
        series[f"maxcompute_exporter_max_staleness_seconds{{{labels}}}"][step] = MAX_STALENESS
        if last_good is None:
            continue
        polled_at, groups = last_good
        series[f"maxcompute_exporter_last_success_timestamp_seconds{{{labels}}}"][step] = (
            polled_at - START
        )
        if now - polled_at > MAX_STALENESS:
            continue  # the exporter has dropped the job series
        for key, group in groups.items():
            add_group(series, step, key.quota, key.project, group)
    add_quota_poll(series, workload)
    steps = duration // SCRAPE + 1
    series['up{job="maxcompute-exporter",instance="demo:10181"}'] = dict.fromkeys(range(steps), 1)
    return {name: promtool_values(values, steps) for name, values in series.items()}


def promtool_values(values: dict[int, float], steps: int) -> str:
    """A series gone from a scrape is marked stale (as Prometheus does), then absent."""
    return " ".join(
        str(values[i]) if i in values else "stale" if i - 1 in values else "_" for i in range(steps)
    )


# --demo's quota poll: usage every 15 s, ListQuotas every 60 s; a failing part's series are
# served for 3 of its intervals, then dropped.
USAGE_SERVED, CAPACITY_SERVED = 45, 180


def add_quota_poll(series: dict, workload) -> None:
    """The quota poll's series, as the exporter serves them from the demo's simulator."""
    catalog = demo_quotas(START)
    last_good: int | None = None
    for step, now in enumerate(range(START, START + CYCLE_SECONDS + 121, SCRAPE)):
        up = faults_at((now - START) % CYCLE_SECONDS).server_error < 1.0
        last_good = now if up else last_good
        for operation in ("ListQuotas", "GetQuotaUsage"):
            series[f'maxcompute_exporter_quota_poll_up{{{TARGET},operation="{operation}"}}'][
                step
            ] = 1.0 if up else 0.0
        jobs = workload(last_good)
        for level1 in catalog.quotas:
            for sub in level1.subs:
                labels = f'{TARGET},quota="{sub.nickname}"'
                if now - last_good <= CAPACITY_SERVED:
                    for name, value in (("max_cu", sub.max_cu), ("reserved_cu", sub.min_cu)):
                        if value is not None:
                            series[f"maxcompute_quota_{name}{{{labels}}}"][step] = value
                if now - last_good <= USAGE_SERVED:
                    used = used_cores(catalog, jobs, level1, sub.nickname)
                    series[f"maxcompute_quota_used_cpu_cores{{{labels}}}"][step] = used
                    series[f"maxcompute_quota_requested_cpu_cores{{{labels}}}"][step] = round(
                        used * catalog.demand, 3
                    )


def add_group(series: dict, step: int, quota: str, project: str, group: GroupAggregate) -> None:
    labels = f'{TARGET},quota="{quota}",project="{project}"'
    for metric, value in GROUP_METRICS.items():
        number = value(group)
        if number is not None:
            series[f"{metric}{{{labels}}}"][step] = number


def test_the_demo_fires_every_maxcompute_alert_in_its_first_cycle_then_recovers(tmp_path):
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    expected = sorted(alerts - SCRAPE_ALERTS - LONGER_THAN_A_CYCLE)
    first_cycle = f"{CYCLE_SECONDS}s"
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": f"{SCRAPE}s",
        "tests": [
            {
                "interval": f"{SCRAPE}s",
                "input_series": [
                    {"series": name, "values": values}
                    for name, values in exporter_scrapes(CYCLE_SECONDS + 120).items()
                ],
                "promql_expr_test": [
                    # Every alert was at least pending (true) in the first cycle...
                    {
                        "expr": f"max by (alertname) (max_over_time(ALERTS[{first_cycle}]))",
                        "eval_time": first_cycle,
                        "exp_samples": [
                            {"labels": f'{{alertname="{name}"}}', "value": 1} for name in expected
                        ],
                    },
                    # ... and the ones a person sees in Alertmanager fired.
                    {
                        "expr": "max by (alertname, severity) (max_over_time("
                        f'ALERTS{{alertstate="firing"}}[{first_cycle}]))',
                        "eval_time": first_cycle,
                        "exp_samples": [
                            {"labels": f'{{alertname="{name}",severity="{severity}"}}', "value": 1}
                            for name, severity in FIRING_IN_FIRST_CYCLE
                        ],
                    },
                    # The page fires before the quota is full: at the scrape before the first
                    # at 99 % or more.
                    {
                        "expr": 'ALERTS{alertname="MaxComputeQuotaCUSaturationImminent"}',
                        "eval_time": f"{first_full_scrape() - SCRAPE}s",
                        "exp_samples": [{"labels": f"ALERTS{PAGE}", "value": 1}],
                    },
                    # Blindness is not recovery: what fired before the outage fires at every
                    # evaluation of it (570 s to 780 s: 8), though its series are gone.
                    {
                        "expr": 'count_over_time(ALERTS{alertstate="firing", '
                        'alertname=~"MaxComputeQuota.*|MaxComputeJob.*"}'
                        f"[{OUTAGE[1] - OUTAGE[0] - SCRAPE}s])",
                        "eval_time": f"{OUTAGE[1] - SCRAPE}s",
                        "exp_samples": [
                            {"labels": labels, "value": 8} for labels in HELD_THROUGH_THE_OUTAGE
                        ],
                    },
                    # A minute into the next cycle everything has recovered, on data.
                    {
                        "expr": 'ALERTS{alertstate="firing"}',
                        "eval_time": f"{CYCLE_SECONDS + 60}s",
                        "exp_samples": [],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "demo_test.yml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    result = subprocess.run(
        [promtool(), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def first_full_scrape() -> int:
    """Seconds into the cycle of the first 30 s scrape at which etl_quota is 99 % full."""
    return next(
        t for t in range(0, CYCLE_SECONDS, SCRAPE) if quota_sums(START + t)["etl_quota"] >= 0.99
    )


ALERT = '{{alertname="{}",alertstate="firing",severity="{}",' + TARGET.replace(
    ',instance="demo:10181"', ""
)
PAGE = ALERT.format("MaxComputeQuotaCUSaturationImminent", "critical") + ',quota="etl_quota"}'
HELD_THROUGH_THE_OUTAGE = [
    PAGE,
    ALERT.format("MaxComputeJobRunningLong", "warning") + ',quota="ml_quota",project="risk_model"}',
    ALERT.format("MaxComputeJobStuckAtZeroProgress", "warning")
    + ',quota="ml_quota",project="ads_report"}',
    ALERT.format("MaxComputeJobsQueueingLong", "warning")
    + ',quota="adhoc_quota",project="user_profile"}',
]


# MaxComputeDataStale is only pending: it waits for its cause, MaxComputePollsFailing, to fire
# first (one cause, one notification), and the outage ends before its 4 minutes are up.
FIRING_IN_FIRST_CYCLE = [
    ("MaxComputeJobRunningLong", "warning"),
    ("MaxComputeJobStuckAtZeroProgress", "warning"),
    ("MaxComputeJobsQueueingLong", "warning"),
    ("MaxComputePollsFailing", "warning"),
    ("MaxComputeQuotaCUSaturationImminent", "critical"),
]
