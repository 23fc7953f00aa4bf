"""The shipped Alertmanager configuration: amtool accepts it, every alert of rules.yml routes by
its severity, and a real Alertmanager inhibits what one cause would otherwise send twice."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.support.alertmanager_process import Alertmanager, amtool
from tests.support.tools import ROOT

CONFIG = ROOT / "deploy" / "compose" / "alertmanager.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RECEIVER_BY_SEVERITY = {"critical": "page", "warning": "ticket"}
JOB = "job=maxcompute-exporter"


def run_amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool(), *args], capture_output=True, text=True, timeout=30, check=False
    )


def rule_alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_amtool_accepts_the_config():
    result = run_amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("rule", rule_alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_routes_by_its_severity(rule):
    severity = rule["labels"]["severity"]
    expected = RECEIVER_BY_SEVERITY[severity]
    result = run_amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={expected}",
        f"alertname={rule['alert']}",
        f"severity={severity}",
        JOB,
        "region=cn-hangzhou",
        "quota=etl_quota",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == expected


# (labels of an alert sent to Alertmanager, whether the shipped config must suppress it)
ALERTS = [
    # cn-hangzhou's polls fail: its stale data and its job alerts are effects, not causes.
    ("alertname=MaxComputePollsFailing severity=warning region=cn-hangzhou", False),
    ("alertname=MaxComputeDataStale severity=warning region=cn-hangzhou", True),
    (
        "alertname=MaxComputeJobStuckAtZeroProgress severity=warning region=cn-hangzhou "
        "quota=etl_quota project=sales",
        True,
    ),
    # cn-shanghai polls fine: its alerts are its own.
    ("alertname=MaxComputeDataStale severity=warning region=cn-shanghai", False),
    # One quota about to be full: the page goes out, its warnings are held back...
    (
        "alertname=MaxComputeQuotaCUSaturationImminent severity=critical region=cn-shanghai "
        "quota=etl_quota",
        False,
    ),
    (
        "alertname=MaxComputeQuotaCUSaturation severity=warning region=cn-shanghai quota=etl_quota",
        True,
    ),
    (
        "alertname=MaxComputeQuotaCUSaturationPredicted severity=warning region=cn-shanghai "
        "quota=etl_quota",
        True,
    ),
    (
        "alertname=MaxComputeQuotaReservedCUExhausted severity=warning region=cn-shanghai "
        "quota=etl_quota",
        True,
    ),
    # ... but not another quota's.
    (
        "alertname=MaxComputeQuotaCUSaturation severity=warning region=cn-shanghai quota=ml_quota",
        False,
    ),
    (
        "alertname=MaxComputeQuotaReservedCUExhausted severity=warning region=cn-shanghai "
        "quota=ml_quota",
        False,
    ),
    # The quota poll of a region whose every poll fails: the same cause, held back; a quota
    # poll failing on its own (a missing RAM action) notifies.
    (
        "alertname=MaxComputeQuotaPollsFailing severity=warning region=cn-hangzhou "
        "operation=ListQuotas",
        True,
    ),
    (
        "alertname=MaxComputeQuotaPollsFailing severity=warning region=cn-shanghai "
        "operation=GetQuotaUsage",
        False,
    ),
]


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    server = Alertmanager(CONFIG, tmp_path_factory.mktemp("alertmanager"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_one_cause_one_notification(alertmanager: Alertmanager):
    for labels, _ in ALERTS:
        result = run_amtool(
            "alert", "add", f"--alertmanager.url={alertmanager.url}", JOB, *labels.split()
        )
        assert result.returncode == 0, result.stdout + result.stderr
    expected = {
        frozenset([JOB, *labels.split()]): "suppressed" if muted else "active"
        for labels, muted in ALERTS
    }
    deadline = time.monotonic() + 10
    while True:
        got = {
            frozenset(f"{k}={v}" for k, v in alert["labels"].items()): alert["status"]["state"]
            for alert in alertmanager.alerts()
        }
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == expected
    # amtool's own view agrees: exactly the suppressed ones are listed as inhibited.
    result = run_amtool(
        "alert", "query", "--inhibited", "-o", "json", f"--alertmanager.url={alertmanager.url}"
    )
    assert result.returncode == 0, result.stderr
    inhibited = yaml.safe_load(result.stdout)
    assert len(inhibited) == sum(muted for _, muted in ALERTS)
    assert all(alert["status"]["inhibitedBy"] for alert in inhibited)
