"""Checks of the Grafana dashboard and its provisioning files."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.support.metric_contract import CONTRACT_METRICS, METRIC_NAME
from tests.support.tools import ROOT

DASHBOARD = ROOT / "grafana" / "dashboards" / "maxcompute.json"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = ROOT / "grafana" / "provisioning" / "dashboards" / "maxcompute.yml"
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TEMPLATE_VARIABLES = ("datasource", "region", "quota", "project")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# Every panel the issue asks for, found by a metric or recording rule in its queries.
REQUIRED_CONTENT = {
    "running jobs": "maxcompute_running_jobs{",
    "CU by quota": "maxcompute:quota_cu_saturation:ratio",
    "memory by quota": "maxcompute:quota_memory_saturation:ratio",
    "CU by project": "maxcompute_running_jobs_cu_ratio",
    "memory by project": "maxcompute_running_jobs_memory_ratio",
    "queue time": "maxcompute_running_jobs_max_queue_seconds",
    "run time": "time() - min by (region, quota, project) "
    "(maxcompute_running_jobs_oldest_start_timestamp_seconds",
    "progress": "maxcompute_running_jobs_progress_sum_ratio",
    "zero-progress jobs": "maxcompute_running_jobs_zero_progress{",
    "zero-progress age": "maxcompute_running_jobs_zero_progress_oldest_start_timestamp_seconds",
    "top quotas": "topk(10, maxcompute:quota_cu_saturation:ratio",
    "top projects": "topk(10, sum by (region, quota, project)",
    "up": "maxcompute_up",
    "time since last success": "time() - maxcompute_exporter_last_success_timestamp_seconds",
    "poll duration p90": "histogram_quantile(0.9, sum by (region, instance, le) "
    "(rate(maxcompute_exporter_poll_duration_seconds_bucket",
    "API requests by code": "sum by (region, code) (rate(maxcompute_exporter_api_requests_total",
    "invalid jobs rate": "rate(maxcompute_exporter_invalid_jobs_total",
    "poll errors": "rate(maxcompute_exporter_poll_errors_total",
    "time to saturation": "maxcompute:quota_cu_time_to_saturation:seconds",
    "named jobs": "maxcompute_running_job_cu_ratio",
    "throughput": "maxcompute:quota_jobs_finished:increase1h",
    "queue wait quantiles": "maxcompute:quota_job_queue_wait_seconds:p90_15m",
    "run time quantiles": "maxcompute:quota_job_run_seconds:p90_15m",
    "queue wait heatmap": "increase(maxcompute_job_queue_wait_seconds_bucket",
    "jobs running over an hour": 'maxcompute_running_jobs_run_time_seconds_bucket{le="3600.0"',
    "used CUs by quota": "maxcompute:quota_used_cpu_cores:max",
    "reserved CUs by quota": "maxcompute:quota_reserved_cu:max",
    "max CUs by quota": "maxcompute:quota_max_cu:max",
    "demand over ceiling": "maxcompute:quota_demand_over_ceiling:ratio",
    "plan in force": "maxcompute:quota_info:max",
    "quota poll up": "maxcompute_exporter_quota_poll_up",
    "CU-hours by project": "increase(maxcompute_cu_share_seconds_total{",
    "each quota's use split by project": "maxcompute:project_cu:rate5m{",
    "top owners": "increase(maxcompute_owner_cu_share_seconds_total{",
}
# Job series per quota, with no project label: filtered like the quota rules.
PER_QUOTA_JOB_SERIES = ("maxcompute_running_jobs_run_time_seconds",)
# Counters of failures: their panels show a series only while it is not zero.
ERROR_COUNTERS = (
    "maxcompute_exporter_poll_errors_total",
    "maxcompute_exporter_invalid_jobs_total",
    "maxcompute_exporter_quota_poll_errors_total",
)
# Grafana units that read "per second".
RATE_UNITS = {"reqps", "ops", "cps", "rps", "wps", "iops"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    text = DASHBOARD.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        pytest.fail(f"{DASHBOARD} is not valid JSON: {error}")


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard) if p["type"] != "row"]


def all_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in data_panels(dashboard) for t in p.get("targets", [])]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def recording_rules() -> set[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "maxcompute-exporter"
    assert len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None, "exported dashboards carry no id"
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_template_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(TEMPLATE_VARIABLES) <= set(variables)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("region", "quota", "project"):
        var = variables[name]
        assert var["type"] == "query", name
        assert var["datasource"] == DATASOURCE, name
        assert var["multi"] is True and var["includeAll"] is True, name
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert re.fullmatch(rf"label_values\(.+,\s*{name}\)", query), f"{name}: {query}"
    # Each variable narrows the next one.
    assert "$region" in variables["quota"]["definition"]
    assert "$quota" in variables["project"]["definition"]


def test_every_panel_and_target_uses_the_datasource_variable(dashboard):
    panels = data_panels(dashboard)
    assert panels
    for panel in panels:
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no target"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, panel["title"]
    # No hard-coded data source name or uid anywhere (the built-in annotation aside).
    for value in datasource_references(dashboard):
        assert value == DATASOURCE or value == {"type": "grafana", "uid": "-- Grafana --"}, value


def datasource_references(node: Any) -> list[Any]:
    """Every value of a "datasource" key anywhere in the dashboard, but the variable's own."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and node.get("type") != "datasource":
                found.append(value)
            found.extend(datasource_references(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(datasource_references(item))
    return found


def test_every_panel_has_a_query(dashboard):
    for panel in data_panels(dashboard):
        exprs = [t.get("expr", "").strip() for t in panel["targets"]]
        assert any(exprs), f"panel {panel['title']!r} has no non-empty expr"
        assert panel.get("gridPos", {}).keys() >= {"h", "w", "x", "y"}, panel["title"]


def test_only_contract_metrics_and_recording_rules(dashboard):
    allowed = CONTRACT_METRICS | recording_rules()
    used = set()
    for expr in all_exprs(dashboard) + variable_queries(dashboard):
        used |= set(METRIC_NAME.findall(STRING.sub('""', expr)))
    assert used, "no metric found in the dashboard"
    unknown = used - allowed
    assert not unknown, f"unknown metric names: {sorted(unknown)}"


def test_queries_filter_on_the_variables_and_deduplicate(dashboard):
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            per_quota = any(name in expr for name in PER_QUOTA_JOB_SERIES)
            if "maxcompute_running_jobs" in expr and not per_quota:
                for var in ("$region", "$quota", "$project"):
                    assert var in expr, f"{panel['title']}: {var} missing in {expr}"
                # Raw job series exist once per replica: never sum them before a max/min.
                assert re.search(r"\b(max|min)( by| without)? \(", expr), expr
            elif "maxcompute:quota" in expr or per_quota:
                assert "$region" in expr and "$quota" in expr, expr
                if per_quota:
                    assert re.search(r"\b(max|min)( by| without)? \(", expr), expr
            elif "maxcompute_" in expr and "build_info" not in expr:
                assert "$region" in expr, expr


def test_required_panels_are_present(dashboard):
    exprs = "\n".join(all_exprs(dashboard))
    missing = [name for name, text in REQUIRED_CONTENT.items() if text not in exprs]
    assert not missing, f"missing panels: {missing}"


def test_rates_carry_rate_units(dashboard):
    for panel in data_panels(dashboard):
        # A quantile of rates is a duration, not a rate.
        exprs = [t["expr"] for t in panel["targets"]]
        if any("rate(" in e and "histogram_quantile" not in e for e in exprs):
            unit = panel["fieldConfig"]["defaults"].get("unit", "")
            assert unit in RATE_UNITS or unit.endswith("/s"), f"{panel['title']}: unit {unit!r}"


def test_error_counters_hide_their_always_zero_series(dashboard):
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            if any(counter in target["expr"] for counter in ERROR_COUNTERS):
                assert target["expr"].rstrip().endswith("> 0"), panel["title"]


def test_named_jobs_table_shows_instance_and_owner(dashboard):
    (table,) = [p for p in data_panels(dashboard) if "maxcompute_running_job_" in str(p)]
    assert table["type"] == "table"
    order = table["transformations"][-1]["options"]["indexByName"]
    assert {"instance_id", "owner", "quota", "project"} <= set(order)
    for target in table["targets"]:
        assert target["instant"] is True and target["format"] == "table"
        assert "max without (instance, pod)" in target["expr"], target["expr"]


def test_datasource_provisioning():
    config = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"].startswith("http")
    assert source["access"] == "proxy"


def test_dashboard_provisioning_points_at_the_mounted_dashboards():
    config = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    assert path in mounts, f"the compose file mounts nothing at {path}"
    mounted = (COMPOSE.parent / mounts[path]).resolve()
    assert mounted == DASHBOARD.parent.resolve()


def test_consumption_table_is_sortable_per_project_over_the_range(dashboard):
    (table,) = [p for p in data_panels(dashboard) if p["title"].startswith("CU-hours by project")]
    assert table["type"] == "table" and 400 <= table["id"] < 410
    assert table["options"]["sortBy"] == [{"displayName": "CU-hours", "desc": True}]
    order = table["transformations"][-1]["options"]["indexByName"]
    assert list(order)[:3] == ["region", "quota", "project"]
    for target in table["targets"]:
        assert target["instant"] is True and target["format"] == "table"
        assert "[$__range]" in target["expr"] and "max without (instance, pod)" in target["expr"]
    (cu_hours,) = [t for t in table["targets"] if t["refId"] == "A"]
    assert "maxcompute_quota_max_cu" in cu_hours["expr"] and "/ 3600" in cu_hours["expr"]


def test_plan_switches_are_an_annotation(dashboard):
    """A plan switch is marked on the graphs (issue 18), from the rule that records it."""
    (switch,) = [a for a in dashboard["annotations"]["list"] if a.get("name") == "Plan switch"]
    assert switch["datasource"] == DATASOURCE
    assert switch["expr"].startswith("maxcompute:quota_plan_switch:info{")
    assert "$region" in switch["expr"] and "$quota" in switch["expr"]
    recorded = {
        rule.get("record")
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    assert "maxcompute:quota_plan_switch:info" in recorded
