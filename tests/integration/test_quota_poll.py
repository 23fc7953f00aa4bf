"""The quota poll end to end, as the README tells it: the exporter as a subprocess against the
simulator serving 3 level-1 quotas and 8 sub-quotas over 3 pages of ListQuotas (both envelopes),
and GetQuotaUsage from the jobs it runs; exact capacity and usage on /metrics. A ListQuotas that
fails (no RAM permission) leaves the running-jobs poll and its series exactly as they were."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.demo.quota_simulator import Level1Quota, QuotaCatalog, SubQuota
from exporter.demo.simulator import ApiSimulator
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import values
from tests.support.jobs import job_record

KEY_ID, SECRET = "LTAIquotas", "quota-secret-value"
ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
NOW = int(time.time())

CATALOG = QuotaCatalog(
    (
        Level1Quota(
            "prod_p",
            (
                SubQuota("etl", min_cu=300, max_cu=400, elastic_cu=50, job_max_cu=200),
                SubQuota("adhoc", min_cu=100, max_cu=200, job_max_cu=50, scheduler_type="Fair"),
                SubQuota("report", min_cu=0, max_cu=100),
            ),
            min_cu=400,
            max_cu=600,
            elastic_cu=100,
            plans=(("day", 400),),
        ),
        Level1Quota(
            "ml_p",
            (
                SubQuota("train", min_cu=60, max_cu=120),
                SubQuota("serve", min_cu=40, max_cu=80),
                SubQuota("explore", max_cu=40),
            ),
            min_cu=100,
            max_cu=160,
            elastic_cu=50,
            legacy_adhoc=True,
        ),
        Level1Quota(
            "payg_p",
            (SubQuota("os_PayAsYouGoQuota"), SubQuota("burst", max_cu=500)),
            billing="payasyougo",
        ),
    ),
    page_cap=1,  # one level-1 quota a page: 3 pages, whatever maxItem asks
    envelope="alternate",
    demand=1.5,
)

# etl holds 0.75 of its 400 CUs (300 cores), train 0.5 of 120 (60), burst 0.25 of 500 (125).
JOBS = [
    job_record("etl-1", quota="etl", cu=0.5, submitted=NOW - 600, running=NOW - 500),
    job_record("etl-2", quota="etl", cu=0.25, submitted=NOW - 400, running=NOW - 300),
    job_record("train-1", quota="train", cu=0.5, submitted=NOW - 300, running=NOW - 200),
    job_record("burst-1", quota="burst", cu=0.25, submitted=NOW - 200, running=NOW - 100),
]


def start(simulator: ApiSimulator, tmp: Path) -> ExporterProcess:
    config = tmp / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
        "poll:\n  interval: 30s\n  window: 1h\n  timeout: 5s\n"
        "quota_poll:\n  quotas_interval: 5m\n  usage_interval: 1m\n"
    )
    process = ExporterProcess("--config", str(config), env=ENV)
    process.wait_until("/ready")
    return process


def scrape_when(process: ExporterProcess, name: str, timeout: float = 20) -> dict:
    """/metrics once a sample named ``name`` is in it."""
    deadline = time.monotonic() + timeout
    while True:
        got = values(process.get("/metrics").text)
        if any(key[0] == name for key in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def key(name: str, **labels: str) -> tuple:
    return (name, *sorted({"region": "cn-hangzhou", **labels}.items()))


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[ApiSimulator, ExporterProcess]]:
    simulator = ApiSimulator(JOBS, credentials={KEY_ID: (SECRET, None)}, quotas=CATALOG).start()
    process = start(simulator, tmp_path_factory.mktemp("quotas"))
    yield simulator, process
    code, log = process.stop()
    simulator.stop()
    assert code == 0, log


def test_capacity_of_every_quota_over_three_pages_is_exact(served) -> None:
    _, process = served
    got = scrape_when(process, "maxcompute_quota_used_cpu_cores")
    capacity = {k: v for k, v in got.items() if k[0].endswith("_cu")}
    assert capacity == {
        key("maxcompute_quota_reserved_cu", quota="prod_p"): 400,
        key("maxcompute_quota_reserved_cu", quota="etl"): 300,
        key("maxcompute_quota_reserved_cu", quota="adhoc"): 100,
        key("maxcompute_quota_reserved_cu", quota="report"): 0,
        key("maxcompute_quota_reserved_cu", quota="ml_p"): 100,
        key("maxcompute_quota_reserved_cu", quota="train"): 60,
        key("maxcompute_quota_reserved_cu", quota="serve"): 40,
        key("maxcompute_quota_max_cu", quota="prod_p"): 600,
        key("maxcompute_quota_max_cu", quota="etl"): 400,
        key("maxcompute_quota_max_cu", quota="adhoc"): 200,
        key("maxcompute_quota_max_cu", quota="report"): 100,
        key("maxcompute_quota_max_cu", quota="ml_p"): 160,
        key("maxcompute_quota_max_cu", quota="train"): 120,
        key("maxcompute_quota_max_cu", quota="serve"): 80,
        key("maxcompute_quota_max_cu", quota="explore"): 40,
        key("maxcompute_quota_max_cu", quota="burst"): 500,
        key("maxcompute_quota_elastic_reserved_cu", quota="prod_p"): 100,
        key("maxcompute_quota_elastic_reserved_cu", quota="etl"): 50,
        key("maxcompute_quota_elastic_reserved_cu", quota="ml_p"): 50,  # from adhocCU
        key("maxcompute_quota_job_max_cu", quota="etl"): 200,
        key("maxcompute_quota_job_max_cu", quota="adhoc"): 50,
    }
    info = {dict(k[1:])["quota"]: dict(k[1:]) for k in got if k[0] == "maxcompute_quota_info"}
    assert len(info) == 11
    assert info["burst"] == {
        "region": "cn-hangzhou",
        "quota": "burst",
        "parent_quota": "payg_p",
        "level": "2",
        "plan": "Default",
        "billing_method": "payasyougo",
        "scheduler_type": "Fifo",
        "status": "ON",
    }
    assert info["prod_p"]["parent_quota"] == "" and info["prod_p"]["level"] == "1"
    assert {q: i["parent_quota"] for q, i in info.items() if i["level"] == "2"} == {
        "etl": "prod_p", "adhoc": "prod_p", "report": "prod_p", "train": "ml_p",
        "serve": "ml_p", "explore": "ml_p", "os_PayAsYouGoQuota": "payg_p", "burst": "payg_p",
    }  # fmt: skip
    assert (
        got[key("maxcompute_exporter_quota_api_requests_total", operation="ListQuotas", code="200")]
        == 3
    )


def test_usage_of_every_quota_follows_its_running_jobs(served) -> None:
    _, process = served
    got = scrape_when(process, "maxcompute_quota_used_cpu_cores")
    used = {
        dict(k[1:])["quota"]: v for k, v in got.items() if k[0] == "maxcompute_quota_used_cpu_cores"
    }
    assert used == {
        "prod_p": 300, "etl": 300, "adhoc": 0, "report": 0,
        "ml_p": 60, "train": 60, "serve": 0, "explore": 0,
        "payg_p": 125, "os_PayAsYouGoQuota": 0, "burst": 125,
    }  # fmt: skip
    requested = {
        dict(k[1:])["quota"]: v
        for k, v in got.items()
        if k[0] == "maxcompute_quota_requested_cpu_cores"
    }
    assert requested == {quota: cores * 1.5 for quota, cores in used.items()}
    ages = [v for k, v in got.items() if k[0] == "maxcompute_quota_usage_age_seconds"]
    # The newest complete minute: between one and two minutes old (plus the scrape's delay).
    assert len(ages) == 11 and all(60 <= age <= 130 for age in ages)
    usage_requests = key(
        "maxcompute_exporter_quota_api_requests_total", operation="GetQuotaUsage", code="200"
    )
    assert got[usage_requests] == 11
    for operation in ("ListQuotas", "GetQuotaUsage"):
        assert got[key("maxcompute_exporter_quota_poll_up", operation=operation)] == 1


def test_listquotas_denied_leaves_the_jobs_poll_and_its_series_exact(tmp_path: Path) -> None:
    denied = QuotaCatalog(CATALOG.quotas, denied=frozenset({"ListQuotas"}))
    simulator = ApiSimulator(JOBS, credentials={KEY_ID: (SECRET, None)}, quotas=denied).start()
    process = start(simulator, tmp_path)
    try:
        got = scrape_when(process, "maxcompute_exporter_quota_poll_up")
        time.sleep(0.5)  # the usage part waits for the listing, then asks nothing
        got = values(process.get("/metrics").text)
    finally:
        code, log = process.stop()
        simulator.stop()
    assert code == 0
    assert got[key("maxcompute_up")] == 1
    jobs = {dict(k[1:])["quota"]: v for k, v in got.items() if k[0] == "maxcompute_running_jobs"}
    assert jobs == {"etl": 2, "train": 1, "burst": 1}
    cu = {
        dict(k[1:])["quota"]: v
        for k, v in got.items()
        if k[0] == "maxcompute_running_jobs_cu_ratio"
    }
    assert cu == {"etl": 0.75, "train": 0.5, "burst": 0.25}
    assert got[key("maxcompute_exporter_quota_poll_up", operation="ListQuotas")] == 0
    errors = key(
        "maxcompute_exporter_quota_poll_errors_total", operation="ListQuotas", reason="auth"
    )
    assert got[errors] == 1
    assert not any(k[0].startswith("maxcompute_quota_") for k in got)
    assert key("maxcompute_exporter_quota_poll_up", operation="GetQuotaUsage") not in got
    warnings = [line for line in log.splitlines() if "ListQuotas poll failed" in line]
    assert len(warnings) == 1, log  # once, not once a poll
    assert "the RAM policy must allow odps:ListQuotas" in warnings[0]
    assert "level=warn" in warnings[0]
