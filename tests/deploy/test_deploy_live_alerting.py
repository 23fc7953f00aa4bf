"""The leading alert end to end: the demo's saturation phase, the exporter, a real Prometheus
with the shipped rule expressions and a real Alertmanager with the shipped configuration.

The workload starts 240 s into its cycle, where ``etl_quota`` is at about 0.85 and rising (it
never reaches 1). Prometheus scrapes and evaluates every second; the test copy of rules.yml
only shortens ``for:`` (to 5 s), every expression is the shipped one. Bounded: about half a
minute when things work, 90 s at most.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exporter.demo.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, ApiSimulator
from exporter.demo.workload import phased_workload
from tests.support.alertmanager_process import Alertmanager
from tests.support.exporter_process import ExporterProcess
from tests.support.prometheus_process import Prometheus, result_of, wait_for
from tests.support.tools import ROOT

ALERTMANAGER_CONFIG = ROOT / "deploy" / "compose" / "alertmanager.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
LEADING_ALERT = "MaxComputeQuotaCUSaturationImminent"
SATURATION_PHASE = 240  # seconds into the demo's cycle: etl_quota at 0.85 and ramping up
DELIVERY_TIMEOUT = 90.0
ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": DEMO_ACCESS_KEY_ID,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEMO_ACCESS_KEY_SECRET,
}


def rules_with_short_for(path: Path) -> Path:
    """rules.yml with every ``for:`` at 5 s; nothing else changes."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "5s"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Prometheus, Alertmanager]]:
    started = time.time() - SATURATION_PHASE
    simulator = ApiSimulator(
        phased_workload(started),
        credentials={DEMO_ACCESS_KEY_ID: (DEMO_ACCESS_KEY_SECRET, None)},
    ).start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}\n"
        "poll: {interval: 1s, timeout: 900ms, window: 1d}\nmetrics: {top_jobs: 3}\n",
        encoding="utf-8",
    )
    exporter = ExporterProcess("--config", str(config), env=ENV)
    alertmanager = Alertmanager(ALERTMANAGER_CONFIG, tmp_path)
    prometheus: Prometheus | None = None
    try:
        alertmanager.wait_ready()
        exporter.wait_until("/ready", timeout=60)
        prometheus = Prometheus(
            tmp_path,
            f"127.0.0.1:{exporter.port}",
            rules=rules_with_short_for(tmp_path / "rules.yml"),
            alertmanager_address=f"127.0.0.1:{alertmanager.port}",
        )
        server = prometheus
        wait_for(
            "Prometheus /-/ready",
            lambda: server.client.get("/-/ready").status_code == 200,
            30,
            server.check_running,
            server.log_tail,
        )
        yield prometheus, alertmanager
    finally:
        if prometheus is not None:
            prometheus.stop()
        exporter.stop()
        alertmanager.stop()
        simulator.stop()


def test_the_saturation_phase_pages_through_alertmanager_before_the_quota_is_full(stack):
    prometheus, alertmanager = stack
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    delivered: list[dict] = []
    saturation: list[dict] = []
    while not delivered:
        prometheus.check_running()
        assert time.monotonic() < deadline, (
            f"{LEADING_ALERT} never reached Alertmanager in {DELIVERY_TIMEOUT:.0f} s; "
            f"Prometheus alerts: {prometheus.api('/api/v1/alerts').get('data')}\n"
            f"{prometheus.log_tail()}"
        )
        delivered = [
            alert
            for alert in alertmanager.alerts()
            if alert["labels"].get("alertname") == LEADING_ALERT
        ]
        saturation = result_of(
            prometheus, 'maxcompute:quota_cu_saturation:ratio{quota="etl_quota"}'
        )
        time.sleep(0.5)
    (alert,) = delivered
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["quota"] == "etl_quota"
    assert alert["labels"]["region"] == "cn-hangzhou"
    assert alert["status"]["state"] == "active"  # nothing inhibits the page
    # Paged while the quota is still below full, naming its largest jobs (per-job view on).
    assert saturation and float(saturation[0]["value"][1]) < 1.0
    description = alert["annotations"]["description"]
    assert "Largest jobs: " in description and "demo (owner " in description, description
    # Only the saturating quota pages.
    others = [a for a in alertmanager.alerts() if a["labels"].get("quota") != "etl_quota"]
    assert not [a for a in others if a["labels"].get("severity") == "critical"], others
