"""Checks of the Prometheus rules, their unit tests and the example configurations.

promtool must be installed (Debian: `apt-get install prometheus`); the tests fail, they do
not skip, when it is missing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.markdown import github_anchors
from tests.support.metric_contract import CONTRACT_METRICS, METRIC_NAME
from tests.support.tools import ROOT, promtool

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
RULES_TEST = PROMETHEUS_DIR / "rules_test.yml"
RUNBOOK = ROOT / "deploy" / "README.md"
PROMETHEUS_CONFIGS = [
    PROMETHEUS_DIR / "prometheus.yml",
    PROMETHEUS_DIR / "prometheus-ha.yml",
    ROOT / "deploy" / "compose" / "prometheus.yml",
]
RUNBOOK_PREFIX = (
    "https://github.com/maxcompute-exporter/maxcompute-exporter/blob/main/deploy/README.md#"
)
REQUIRED_ALERTS = {
    "MaxComputeExporterDown",
    "MaxComputeDataStale",
    "MaxComputeQuotaCUSaturation",
    "MaxComputeQuotaCUSaturationPredicted",
    "MaxComputeQuotaCUSaturationImminent",
    "MaxComputeJobsQueueingLong",
    "MaxComputeJobRunningLong",
    "MaxComputeJobStuckAtZeroProgress",
}
SEVERITIES = {"critical", "warning", "info"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
SERIES = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{(.*)\}\s*$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"] not in found, f"alert {rule['alert']} is defined twice"
            found[rule["alert"]] = rule
    return found


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    match = SERIES.match(text)
    assert match, f"cannot parse input series {text!r}"
    labels = dict(LABEL.findall(match.group(2)))
    return match.group(1), labels


def test_promtool_check_rules():
    result = run(promtool(), "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules():
    result = run(promtool(), "test", "rules", RULES_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_promtool_check_config(config):
    result = run(promtool(), "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    text = load(config)
    assert text["rule_files"], "the example must load the rules"
    (job,) = [j for j in text["scrape_configs"] if j["job_name"] == "maxcompute-exporter"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert text["global"]["scrape_interval"] in {"30s", "60s", "1m"}


def test_required_alerts_exist():
    missing = REQUIRED_ALERTS - set(alerts())
    assert not missing, f"missing alerts: {sorted(missing)}"
    for name in alerts():
        assert re.fullmatch(r"MaxCompute(?:[A-Z][a-zA-Z0-9]*)+", name), f"{name} is not CamelCase"


def test_alerts_have_labels_annotations_and_runbook():
    anchors = github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    for name, rule in alerts().items():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key, "").strip(), f"{name} lacks annotation {key}"
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), f"{name}: runbook_url {url}"
        anchor = url.removeprefix(RUNBOOK_PREFIX)
        assert anchor in anchors, f"{name}: no section #{anchor} in deploy/README.md"


def test_alert_descriptions_name_their_labels():
    for name, rule in alerts().items():
        description = rule["annotations"]["description"]
        expr = rule["expr"]
        if "maxcompute_running_jobs" in expr or "maxcompute:quota" in expr:
            assert "$labels.region" in description, name
            assert "$labels.quota" in description, name
        if "maxcompute_running_jobs_" in expr and "maxcompute:" not in expr:
            assert "$labels.project" in description, name
        if "maxcompute_up" in expr or "last_success" in expr:
            assert "$labels.region" in description, name


def test_rules_use_only_contract_metrics_and_deduplicate_replicas():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for name in recorded:
        assert re.fullmatch(r"maxcompute:[a-z0-9_]+:[a-z0-9_]+", name), name
    for rule in rules():
        expr = rule["expr"]
        names = set(METRIC_NAME.findall(STRING.sub('""', expr)))
        unknown = names - CONTRACT_METRICS - recorded
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown {unknown}"
        if names & CONTRACT_METRICS:
            # Raw exporter series exist once per replica: de-duplicate before anything else.
            assert re.search(r"(max|min) without \(instance, pod\)", expr), expr


def test_every_alert_is_tested_firing_and_not_firing():
    firing: dict[str, list[dict[str, Any]]] = {}
    silent: set[str] = set()
    for test in load(RULES_TEST)["tests"]:
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                firing.setdefault(case["alertname"], []).append(test)
            else:
                silent.add(case["alertname"])
    for name in alerts():
        assert name in firing, f"no test where {name} fires"
        assert name in silent, f"no test where {name} does not fire"


def test_alerts_are_tested_with_two_replicas():
    """Each firing alert has a test with two input series differing only in `instance`."""
    tests_by_alert: dict[str, list[dict[str, Any]]] = {}
    for test in load(RULES_TEST)["tests"]:
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                tests_by_alert.setdefault(case["alertname"], []).append(test)
    for name in alerts():
        if name == "MaxComputeExporterAbsent":
            continue  # fires on the absence of every replica's `up`, tested with two anyway
        has_pair = False
        for test in tests_by_alert.get(name, []):
            keys = []
            for item in test["input_series"]:
                metric, labels = parse_series(item["series"])
                if "instance" in labels:
                    labels = {k: v for k, v in labels.items() if k != "instance"}
                    keys.append((metric, tuple(sorted(labels.items()))))
            if len(keys) != len(set(keys)):
                has_pair = True
        assert has_pair, f"{name}: no firing test with two replicas of the same series"


def test_two_replicas_yield_one_alert():
    """Where both replicas carry the series, every expected alert is listed once."""
    for test in load(RULES_TEST)["tests"]:
        for case in test.get("alert_rule_test", []):
            labels = [tuple(sorted(a["exp_labels"].items())) for a in case.get("exp_alerts", [])]
            assert len(labels) == len(set(labels)), f"{test['name']}: duplicate alert"
            for alert_labels in labels:
                assert "instance" not in dict(alert_labels) or case["alertname"] == (
                    "MaxComputeExporterDown"
                ), f"{test['name']}: an alert per replica"


def test_runbook_anchor_helper():
    anchors = github_anchors("# Runbook\n## MaxComputeExporterDown\n### Run `x` now!\n# Runbook\n")
    assert anchors == {"runbook", "maxcomputeexporterdown", "run-x-now", "runbook-1"}
