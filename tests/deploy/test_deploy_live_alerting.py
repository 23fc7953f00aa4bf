"""The alerts end to end, as an on-call person receives them: ``--demo`` (15 times faster), a
real Prometheus with the shipped rules, a real Alertmanager with the shipped routing and
inhibition, and a webhook receiver on loopback in place of the pager and the ticket queue.

Everything that counts time runs 15 times faster together, so the run is the demo's first cycle
as the compose stack sees it: the exporter polls every 15 demo seconds, Prometheus scrapes and
evaluates every 30, the rules' windows, `for:` and thresholds in seconds and Alertmanager's
group timings are divided by 15 (nothing else changes). Its 810 demo seconds take 54 s, and
the exporter's recovery after the outage a few more (its retries run in wall time).

What the person receives: the page before etl_quota is full; one notification per cause (the
page, three job tickets, the outage ticket), none for the symptoms inhibited or held; the outage
ticket while the outage lasts; and no resolution during the fault phase (blindness is not
recovery). Then, polls back and the data calm, the page and the outage resolve on data.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.demo.workload import OUTAGE, RAMP, SATURATING_QUOTA, quota_level
from tests.support.alertmanager_process import Alertmanager
from tests.support.exporter_process import ExporterProcess
from tests.support.prometheus_process import Prometheus, result_of, wait_for
from tests.support.tools import ROOT
from tests.support.webhook_receiver import Notification, WebhookReceiver

ALERTMANAGER_CONFIG = ROOT / "deploy" / "compose" / "alertmanager.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
SPEED = 15
SCRAPE = 30  # demo seconds, as deploy/prometheus/prometheus.yml
FULL = 0.99
PAGE = ("MaxComputeQuotaCUSaturationImminent", "etl_quota", None)
OUTAGE_TICKET = ("MaxComputePollsFailing", None, None)
# One notification per cause, and nothing else (the problem jobs of exporter/demo/workload.py).
CAUSES = {
    PAGE,
    ("MaxComputeJobRunningLong", "ml_quota", "risk_model"),
    ("MaxComputeJobStuckAtZeroProgress", "ml_quota", "ads_report"),
    ("MaxComputeJobsQueueingLong", "adhoc_quota", "user_profile"),
    OUTAGE_TICKET,
}
DURATION = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RANGE = re.compile(r"\[(\d+)([smhd])\]|offset (\d+)([smhd])")
# Thresholds in seconds: after a strict comparison, or a factor (6 * 3600). Counts of
# evaluations and of jobs (>= 10, >= 100, >= 5) are neither and stay.
SECONDS = re.compile(r"(?<=[<>] )(\d{2,})(?!\.)|(?<=\* )(\d{2,})")


def faster(duration: str) -> str:
    match = DURATION.match(duration)
    assert match, duration
    return f"{int(match.group(1)) * UNIT_SECONDS[match.group(2)] * 1000 // SPEED}ms"


def faster_expr(expr: str) -> str:
    def window(match: re.Match) -> str:
        number, unit = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
        scaled = faster(f"{number}{unit}")
        return f"[{scaled}]" if match.group(1) else f"offset {scaled}"

    def seconds(match: re.Match) -> str:
        value = int(match.group(0))
        return f"{value / SPEED:g}" if value >= 60 else match.group(0)

    return SECONDS.sub(seconds, RANGE.sub(window, expr))


def faster_rules(path: Path) -> Path:
    """rules.yml with every window, `for:` and threshold in seconds divided by SPEED."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = faster_expr(rule["expr"])
            if "for" in rule:
                rule["for"] = faster(rule["for"])
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def faster_alertmanager(path: Path, webhook: str) -> Path:
    """The shipped alertmanager.yml, its receivers the webhook, its group timings faster."""
    document = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    routes = [document["route"], *document["route"].get("routes", [])]
    for route in routes:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = faster(route[key])
    for receiver in document["receivers"]:
        receiver["webhook_configs"] = [{"url": webhook, "send_resolved": True}]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_faster_rules_scale_seconds_not_counts():
    expr = (
        "x[5m] offset 10m > 1800 and count_over_time(y[1h]) >= 100 and z > 6 * 3600 "
        "and r > 0.85 and c >= 10"
    )
    assert faster_expr(expr) == (
        "x[20000ms] offset 40000ms > 120 and count_over_time(y[240000ms]) >= 100 "
        "and z > 6 * 240 and r > 0.85 and c >= 10"
    )


def demo_started(exporter: ExporterProcess) -> float:
    """When the demo's phases began (the exporter logs it), Unix seconds."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"started=([0-9.e+]+)", exporter.log())
        if match:
            return float(match.group(1))
        time.sleep(0.1)
    raise AssertionError(f"the exporter never logged its demo start:\n{exporter.log()}")


def full_at() -> float:
    """Demo seconds at which the saturating quota is 99 % full (its ramp has no wobble)."""
    return next(
        t / 10
        for t in range(RAMP[0] * 10, RAMP[1] * 10)
        if quota_level(SATURATING_QUOTA, t / 10) >= FULL
    )


def cause(alert: dict[str, Any]) -> tuple[str, str | None, str | None]:
    labels = alert["labels"]
    return labels["alertname"], labels.get("quota"), labels.get("project")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Prometheus, WebhookReceiver, float]]:
    webhook = WebhookReceiver()
    exporter = ExporterProcess("--demo", "--demo.speed", str(SPEED))
    alertmanager = Alertmanager(faster_alertmanager(tmp_path / "am.yml", webhook.url), tmp_path)
    prometheus: Prometheus | None = None
    try:
        started = demo_started(exporter)
        alertmanager.wait_ready()
        exporter.wait_until("/ready", timeout=60)
        prometheus = Prometheus(
            tmp_path,
            f"127.0.0.1:{exporter.port}",
            rules=faster_rules(tmp_path / "rules.yml"),
            alertmanager_address=f"127.0.0.1:{alertmanager.port}",
            interval=faster(f"{SCRAPE}s"),
        )
        server = prometheus
        wait_for(
            "Prometheus /-/ready",
            lambda: server.client.get("/-/ready").status_code == 200,
            30,
            server.check_running,
            server.log_tail,
        )
        yield prometheus, webhook, started
    finally:
        if prometheus is not None:
            prometheus.stop()
        exporter.stop()
        alertmanager.stop()
        webhook.stop()


def polls_up(prometheus: Prometheus, started: float) -> str:
    """maxcompute_up at each scrape, as "<demo second>:<0|1>" (what a failure message shows)."""
    body = prometheus.query_range("max(maxcompute_up)", started, time.time(), faster(f"{SCRAPE}s"))
    if body.get("status") != "success" or not body["data"]["result"]:
        return repr(body)
    values = body["data"]["result"][0]["values"]
    return " ".join(f"{round((t - started) * SPEED)}:{v}" for t, v in values)


def demo_seconds(notification: Notification, started: float) -> float:
    return (notification.received_at - started) * SPEED


def resolved_on_data(prometheus: Prometheus) -> bool:
    """Polls succeed again and the page and the outage ticket have resolved."""
    if not result_of(prometheus, "max(maxcompute_up) == 1"):
        return False
    firing = result_of(
        prometheus,
        'ALERTS{alertstate="firing", '
        'alertname=~"MaxComputePollsFailing|MaxComputeQuotaCUSaturationImminent"}',
    )
    return not firing


def test_one_true_notification_per_cause_through_a_demo_cycle(stack):
    prometheus, webhook, started = stack
    end = started + OUTAGE[1] / SPEED
    while time.time() < end:
        prometheus.check_running()
        time.sleep(0.5)
    # The exporter's first good poll after the outage comes seconds of wall time later (its
    # retries and learned rate do not run faster with the demo): wait for it, then for the
    # page and the outage ticket to resolve on data (calm, and the quota drained).
    wait_for(
        "polls to succeed again and the page and the outage to resolve on data",
        lambda: resolved_on_data(prometheus),
        60,
        prometheus.check_running,
        lambda: polls_up(prometheus, started),
    )
    notifications = webhook.notifications()
    timeline = [
        (round(demo_seconds(n, started)), n.status, sorted(cause(a) for a in n.body["alerts"]))
        for n in notifications
    ] + [("maxcompute_up by demo second", polls_up(prometheus, started))]
    firing = [(n, cause(a)) for n in notifications for a in n.alerts("firing")]
    first_firing = {}
    for notification, alert_cause in firing:
        first_firing.setdefault(alert_cause, notification)
    # One notification per cause, and no other: symptoms inhibited, blind alerts held silent.
    assert sorted(first_firing, key=str) == sorted(CAUSES, key=str), timeline
    firing_notifications = [n for n in notifications if n.alerts("firing")]
    assert len(firing_notifications) == len(CAUSES), timeline
    # The page before the quota is full (99 %, at about 333 demo seconds).
    assert demo_seconds(first_firing[PAGE], started) < full_at(), timeline
    (page,) = first_firing[PAGE].alerts("firing")
    assert page["labels"]["severity"] == "critical"
    assert "used " in page["annotations"]["description"], page
    # The demo's 40 equal jobs: no job is named, and the page says why.
    assert "No single job held 10 % of its CUs" in page["annotations"]["description"], page
    # The outage ticket while the outage lasts, naming what it holds open.
    outage_ticket = demo_seconds(first_firing[OUTAGE_TICKET], started)
    assert OUTAGE[0] < outage_ticket < OUTAGE[1], timeline
    (ticket,) = first_firing[OUTAGE_TICKET].alerts("firing")
    assert (
        "MaxComputeQuotaCUSaturationImminent (etl_quota)" in (ticket["annotations"]["description"])
    ), ticket
    # Blindness is not recovery: nothing resolved before the outage ended.
    resolved = [n for n in notifications if n.alerts("resolved")]
    assert all(demo_seconds(n, started) > OUTAGE[1] for n in resolved), timeline
