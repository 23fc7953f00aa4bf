"""The dashboard's and the rules' PromQL, evaluated by a real Prometheus scraping the exporter.

A module-scoped fixture runs the exporter in ``--demo`` mode (its bundled simulator, on
loopback) and a real ``prometheus`` server (Debian package ``prometheus``) that scrapes it
every second and loads ``deploy/prometheus/rules.yml``. Then:

- every recording-rule and alert expression must be accepted by Prometheus, and every rule
  must evaluate without error;
- every template variable's query must return the demo's regions, quotas and projects;
- every dashboard panel query, with the template variables expanded as Grafana expands
  them for "All", must evaluate and return data (finite values, with the labels its legend
  uses), as an instant query and, for time-series panels, as a range query.

The ``prometheus`` binary must be installed (``apt-get install prometheus``, as
``scripts/test.sh`` does): the tests fail, they do not skip, when it is missing.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.demo.launch import demo_quotas
from exporter.demo.workload import DEMO_PROJECTS
from tests.support.exporter_process import ExporterProcess
from tests.support.prometheus_process import SCRAPE_JOB, Prometheus, result_of, wait_for
from tests.support.tools import ROOT

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "maxcompute.json"
JOB = SCRAPE_JOB

# What the demo workload serves (exporter/demo/workload.py and demo/launch.demo_config).
DEMO_VALUES = {
    "region": {"cn-hangzhou"},
    "quota": {"etl_quota", "adhoc_quota", "ml_quota"},
    "project": set(DEMO_PROJECTS),
}

# Grafana's built-in variables, at values Grafana would pick for a short dashboard range
# and a 15 s scrape interval ($__rate_interval = max($__interval + scrape, 4 * scrape)).
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
# $var, ${var}, ${var:format}, [[var]], [[var:format]]
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<match>.*\S)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")

# Panels whose query may legitimately return nothing while the demo is healthy, with the
# reason. Only queries that filter on an error or a condition belong here.
ALLOWED_EMPTY: dict[str, str] = {
    "Poll errors by reason": "always-zero series are hidden: empty while no poll fails",
    "Invalid and reappeared jobs": "always-zero series are hidden: the demo sends no invalid "
    "record and its answers leave no running job out",
    "Time to CU saturation": "only quotas whose saturation rises over 10 evaluations",
    "Quota poll errors by reason": "always-zero series are hidden: empty while no poll fails",
}
# Panels whose series exist but may be NaN while the demo is healthy: quantiles of what changed
# between two polls are undefined until a job starts (or finishes) after the exporter's
# baseline poll, which the seconds this test runs may not hold.
ALLOWED_UNDEFINED: dict[str, str] = {
    "Queue wait p50 / p90 (15 min)": "NaN until a job starts after the baseline poll",
    "Run time p50 / p90 (15 min, lower bound)": "NaN until a job finishes after the baseline",
}

# Alerts about the exporter's health: they must not match anything while the demo is healthy.
HEALTH_ALERTS = (
    "MaxComputeExporterDown",
    "MaxComputeExporterAbsent",
    "MaxComputePollsFailing",
    "MaxComputeDataStale",
    "MaxComputeQuotaPollsFailing",
)

STARTUP_TIMEOUT = 30.0  # each of: exporter ready, Prometheus ready
DATA_TIMEOUT = 40.0  # scrapes, rule results and a second poll (the demo polls every 15 s)


# ----------------------------------------------------------------------------- inputs


def load_rules() -> list[dict[str, Any]]:
    """Every rule of rules.yml, with its group's name under ``group``."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [{**rule, "group": group["name"]} for group in groups for rule in group["rules"]]


def rule_name(rule: dict[str, Any]) -> str:
    return rule.get("record") or rule["alert"]


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panel_targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query target, panels nested in rows included."""
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found.extend((inner, target) for target in inner.get("targets", []))
    return found


def target_id(panel: dict[str, Any], target: dict[str, Any]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", panel.get("title", "").lower()).strip("-")
    return f"{panel.get('id')}-{slug}-{target.get('refId', '')}"


def query_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in dashboard.get("templating", {}).get("list", []) if v["type"] == "query"]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


RULE_LIST = load_rules()
DASHBOARD_JSON = load_dashboard()
TARGETS = panel_targets(DASHBOARD_JSON)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    exporter = ExporterProcess("--demo")
    server: Prometheus | None = None
    try:
        exporter.wait_until("/ready", timeout=STARTUP_TIMEOUT)
        server = Prometheus(
            tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{exporter.port}", RULES
        )

        def alive() -> None:
            if exporter.process.poll() is not None:
                pytest.fail(f"exporter exited: {exporter.log()}")
            server.check_running()

        def diagnostics() -> str:
            targets = server.api("/api/v1/targets").get("data", {}).get("activeTargets", [])
            health = [(t.get("health"), t.get("lastError")) for t in targets]
            return f"scrape targets: {health}\nprometheus log:\n{server.log_tail()}"

        def ready() -> bool:
            return server.client.get("/-/ready").status_code == 200

        wait_for("Prometheus /-/ready", ready, STARTUP_TIMEOUT, alive, server.log_tail)
        for what, expr in [
            ("3 scrapes of the exporter", f'count_over_time(up{{job="{JOB}"}}[1m]) >= 3'),
            ("the exporter to be up", f'up{{job="{JOB}"}} == 1'),
            ("the recording rules' results", "maxcompute:quota_cu_saturation:ratio"),
            # The demo polls at start and every 15 s: rates of the poll histogram need a
            # poll that Prometheus saw happen, else their quantiles are NaN.
            (
                "a poll between two scrapes",
                "increase(maxcompute_exporter_poll_duration_seconds_count[1m]) > 0",
            ),
        ]:
            wait_for(
                what,
                lambda expr=expr: result_of(server, expr),
                DATA_TIMEOUT,
                alive,
                diagnostics,
            )
        yield server
    finally:
        if server is not None:
            server.stop()
        exporter.stop()


# ----------------------------------------------------------------------------- helpers


def describe(body: dict[str, Any]) -> str:
    return f"{body.get('errorType')}: {body.get('error')}"


def expand(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's template variables replaced by ``values`` and the built-ins."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in values:
            return values[name]
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        raise AssertionError(f"unknown template variable {match.group(0)!r} in {expr!r}")

    return VARIABLE.sub(replace, expr)


def label_values(prometheus: Prometheus, query: str) -> list[str]:
    """What Grafana's ``label_values([selector,] label)`` variable query returns."""
    parsed = LABEL_VALUES.match(query)
    assert parsed, f"not a label_values(...) query: {query!r}"
    params = {"match[]": parsed["match"]} if parsed["match"] else None
    body = prometheus.api(f"/api/v1/label/{parsed['label']}/values", params)
    assert body.get("status") == "success", f"{query}: {describe(body)}"
    return body["data"]


@pytest.fixture(scope="module")
def template_values(prometheus: Prometheus) -> dict[str, dict[str, Any]]:
    """Each query variable's options and its "All" value, resolved in order as Grafana does."""
    resolved: dict[str, dict[str, Any]] = {}
    all_values: dict[str, str] = {}
    for variable in query_variables(DASHBOARD_JSON):
        query = expand(variable_query(variable), all_values)
        options = label_values(prometheus, query)
        if variable.get("allValue"):
            all_value = variable["allValue"]
        else:  # Grafana's "All" without a custom value: every option, as a regex
            all_value = "(" + "|".join(re.escape(option) for option in options) + ")"
        all_values[variable["name"]] = all_value
        resolved[variable["name"]] = {"query": query, "options": options, "all": all_value}
    return resolved


def expanded_expr(target: dict[str, Any], template_values: dict[str, dict[str, Any]]) -> str:
    values = {name: resolved["all"] for name, resolved in template_values.items()}
    return expand(target["expr"], values)


def series_values(series: dict[str, Any]) -> list[str]:
    if "value" in series:
        return [series["value"][1]]
    return [value for _, value in series.get("values", [])]


def check_result(
    panel: dict[str, Any], target: dict[str, Any], expr: str, kind: str, body: dict[str, Any]
) -> None:
    title = panel.get("title")
    where = f"panel {title!r} ({kind} query)\n  expr: {expr}"
    assert body.get("status") == "success", f"{where}\n  Prometheus error: {describe(body)}"
    result = body["data"]["result"]
    if not result:
        if title in ALLOWED_EMPTY:
            return
        pytest.fail(f"{where}\n  returned no data ({body['data']['resultType']})")
    values = [float(v) for series in result for v in series_values(series)]
    if title in ALLOWED_UNDEFINED:
        return
    assert any(math.isfinite(v) for v in values), (
        f"{where}\n  returned no finite value: {result[:5]}"
    )
    legend = target.get("legendFormat") or ""
    for label in LEGEND_LABEL.findall(legend):
        missing = [s["metric"] for s in result if label not in s["metric"]]
        assert not missing, (
            f"{where}\n  legend {legend!r} uses label {label!r}, absent from: {missing[:3]}"
        )


# ----------------------------------------------------------------------------- rules


@pytest.mark.parametrize("rule", RULE_LIST, ids=rule_name)
def test_rule_expression_is_accepted(prometheus, rule):
    body = prometheus.query(rule["expr"])
    assert body.get("status") == "success", (
        f"{RULES.name}, group {rule['group']!r}, rule {rule_name(rule)!r}\n"
        f"  expr: {rule['expr'].strip()}\n  Prometheus error: {describe(body)}"
    )


def test_rules_are_loaded_and_healthy(prometheus):
    expected = {(rule["group"], rule_name(rule)) for rule in RULE_LIST}

    def rules() -> list[dict[str, Any]]:
        body = prometheus.api("/api/v1/rules")
        assert body.get("status") == "success", describe(body)
        return [
            {**rule, "group": group["name"], "file": group["file"]}
            for group in body["data"]["groups"]
            for rule in group["rules"]
        ]

    def all_evaluated() -> list[dict[str, Any]]:
        loaded = rules()
        return loaded if all(rule["health"] != "unknown" for rule in loaded) else []

    wait_for("every rule to be evaluated", all_evaluated, 10, prometheus.check_running)
    loaded = rules()
    assert {(rule["group"], rule["name"]) for rule in loaded} == expected
    assert {Path(rule["file"]).resolve() for rule in loaded} == {RULES.resolve()}
    unhealthy = [
        f"group {r['group']!r}, rule {r['name']!r}: health {r['health']!r}, "
        f"error {r.get('lastError')!r}\n  expr: {r['query']}"
        for r in loaded
        if r["health"] != "ok" or r.get("lastError")
    ]
    assert not unhealthy, "\n".join(unhealthy)


# Recorded only under a condition: a trend needs 10 (or, the hour's, 100) evaluations behind
# it, a time to saturation needs a rise. They may hold fewer quotas than the demo has, never
# others.
CONDITIONAL_RECORDS = {
    "maxcompute:quota_cu_saturation:deriv15m",
    "maxcompute:quota_cu_time_to_saturation:seconds",
    "maxcompute:quota_cu_fast_time_to_saturation:seconds",
    "maxcompute:quota_cu_saturation:deriv1h",
    "maxcompute:quota_cu_time_to_saturation_1h:seconds",
}


def capacity_records() -> dict[str, set[str]]:
    """The quota poll's records (issue 18): which of the demo tenant's quotas each holds."""
    catalog = demo_quotas(0.0)
    level1 = {q.nickname for q in catalog.quotas}
    every = level1 | {s.nickname for q in catalog.quotas for s in q.subs}
    with_max = {q.nickname for q in catalog.quotas if q.max_cu} | {
        s.nickname for q in catalog.quotas for s in q.subs if s.max_cu
    }
    return {
        "maxcompute:quota_max_cu:max": with_max,
        "maxcompute:quota_reserved_cu:max": with_max,  # the demo reserves where it caps
        "maxcompute:quota_used_cpu_cores:max": every,
        "maxcompute:quota_requested_cpu_cores:max": every,
        "maxcompute:quota_info:max": every,
        "maxcompute:quota_level1_cu_in_use:estimate": {"prod_p", "ml_p"},
        "maxcompute:quota_cu_headroom:cu": with_max,
        "maxcompute:quota_cpu_saturation:ratio": with_max,
        "maxcompute:quota_demand_over_ceiling:ratio": with_max,
        "maxcompute:quota_used_over_reserved:ratio": with_max,
    }


CAPACITY_RECORDS = capacity_records()
# Consumption (issue 26): per (quota, project), for the demo quotas with a maxCU (all three).
PROJECT_RECORDS = {
    "maxcompute:project_cu_share_hours:increase1h",
    "maxcompute:project_cu_hours:increase1h",
    "maxcompute:project_cu:rate5m",
}
# A plan switch is marked for two minutes after it happens: any level-1 quota, or none.
CONDITIONAL_RECORDS.add("maxcompute:quota_plan_switch:info")


@pytest.mark.parametrize("record", [r["record"] for r in RULE_LIST if "record" in r])
def test_recording_rule_has_one_series_per_demo_quota(prometheus, record):
    body = prometheus.query(record)
    assert body.get("status") == "success", describe(body)
    series = body["data"]["result"]
    quotas = sorted(s["metric"].get("quota") for s in series)
    if record in PROJECT_RECORDS:
        groups = [(s["metric"].get("quota"), s["metric"].get("project")) for s in series]
        assert {quota for quota, _ in groups} == DEMO_VALUES["quota"], f"{record}: {series}"
        assert {project for _, project in groups} <= DEMO_VALUES["project"], series
        assert len(groups) == len(set(groups)) and "instance" not in str(series), series
        return
    if record in CAPACITY_RECORDS:
        assert quotas == sorted(CAPACITY_RECORDS[record]), f"{record}: {series}"
    elif record == "maxcompute:quota_plan_switch:info":
        assert set(quotas) <= {q.nickname for q in demo_quotas(0.0).quotas}, series
    elif record in CONDITIONAL_RECORDS:
        assert set(quotas) <= DEMO_VALUES["quota"] and len(quotas) == len(set(quotas)), series
    else:
        assert quotas == sorted(DEMO_VALUES["quota"]), f"{record}: {series}"
    for s in series:
        assert s["metric"].get("region") == "cn-hangzhou", s
        assert s["metric"].get("job") == JOB, s  # aggregations keep the scrape job
        assert "instance" not in s["metric"] and "project" not in s["metric"], s


@pytest.mark.parametrize("alert", HEALTH_ALERTS)
def test_health_alert_is_quiet_while_the_exporter_is_healthy(prometheus, alert):
    (rule,) = [r for r in RULE_LIST if r.get("alert") == alert]
    body = prometheus.query(rule["expr"])
    assert body.get("status") == "success", describe(body)
    assert body["data"]["result"] == [], f"{alert} matches on a healthy demo: {rule['expr']}"


# ----------------------------------------------------------------------------- dashboard


def test_template_variables_return_the_demo_values(template_values):
    assert set(template_values) == set(DEMO_VALUES)
    for name, expected in DEMO_VALUES.items():
        resolved = template_values[name]
        assert set(resolved["options"]) == expected, (
            f"variable {name}: {resolved['query']} returned {resolved['options']}"
        )


def test_allowed_empty_panels_exist():
    titles = {panel.get("title") for panel, _ in TARGETS}
    assert set(ALLOWED_EMPTY) <= titles
    assert set(ALLOWED_UNDEFINED) <= titles


@pytest.mark.parametrize(
    ("panel", "target"), TARGETS, ids=[target_id(panel, target) for panel, target in TARGETS]
)
def test_panel_query_returns_data(prometheus, template_values, panel, target):
    expr = expanded_expr(target, template_values)
    assert "$" not in expr, f"panel {panel.get('title')!r}: unexpanded variable in {expr}"
    instant = target.get("instant", False)
    ranged = target.get("range", not instant)
    if instant or not ranged:
        check_result(panel, target, expr, "instant", prometheus.query(expr))
    if ranged:
        # The last 5 minutes at a 1 s step, the last point at "now" (a range's points are
        # start + k * step: aligning them on start could leave the newest sample out).
        end = time.time()
        body = prometheus.query_range(expr, end - 300, end, "1s")
        check_result(panel, target, expr, "range", body)
