"""The quota poll in process: its config block, its poller's outcomes against a mocked API
(respx), and the series its collector makes of them (exact values, staleness, health)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from exporter.api.transport.client import RunningJobsClient
from exporter.config import ConfigError, PollSettings, QuotaPollSettings, parse_config
from exporter.metrics.quota_metrics import QuotaCollector
from exporter.metrics.quota_poll_metrics import QuotaPollMetrics
from exporter.polling.publish.quota_snapshot import QuotaStore
from exporter.polling.schedule.quota_poller import QuotaPoller
from tests.support.exposition import values
from tests.support.jobs import NOW, make_target

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-test", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret"}
BASE = "https://maxcompute.cn-hangzhou.aliyuncs.com/api/v1/quotas"
OK = {"requestId": "r", "httpCode": 200, "errorCode": "success"}


def parse(text: str):
    return parse_config(yaml.safe_load("targets: [{region: cn-hangzhou}]\n" + text), ENV)


def test_quota_poll_defaults_and_settings() -> None:
    assert parse("").quota_poll == QuotaPollSettings(True, 300.0, True, 60.0)
    config = parse("quota_poll: {quotas_interval: 10m, usage: false}")
    assert config.quota_poll == QuotaPollSettings(True, 600.0, False, 60.0)
    assert parse("quota_poll: {quotas: false, usage: false}").quota_poll.enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "quota_poll: {quota: true}",
            "quota_poll.quota: unknown key (known keys: quotas, quotas_interval, usage, "
            "usage_interval)",
        ),
        ("quota_poll: {usage: 'yes'}", "quota_poll.usage: expected true or false, got 'yes'"),
        (
            "quota_poll: {usage_interval: 5s}",
            "quota_poll.usage_interval: expected more than poll.timeout (10s), got '5s'",
        ),
        (
            "quota_poll: {quotas: false}",
            "quota_poll.usage: expected false while quota_poll.quotas is false (usage is asked "
            "per quota ListQuotas names): set quota_poll.usage: false or quota_poll.quotas: true",
        ),
    ],
)
def test_quota_poll_mistakes_are_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == message


LISTING = {
    **OK,
    "quotaInfoList": [
        {
            "nickName": "prod_p",
            "billingPolicy": {"billingMethod": "subscription"},
            "scheduleInfo": {"currPlan": "day"},
            "parameter": {"minCU": 400, "maxCU": 600},
            "subQuotaInfoList": [
                {"nickName": "etl", "parameter": {"minCU": 300, "maxCU": 400}},
            ],
        }
    ],
    "marker": "",
}


def usage(used: float, at: int = NOW - 60) -> dict:
    metrics = {"timestamps": [at * 1000], "usedCpu": [used], "requestCpu": [used * 2]}
    return {**OK, "data": {"metrics": metrics}}


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def parts():
    settings = QuotaPollSettings()
    clock = Clock()
    target = make_target()
    store = QuotaStore((target,))
    registry = CollectorRegistry()
    observer = QuotaPollMetrics(registry, [target], (), ["ListQuotas", "GetQuotaUsage"])
    registry.register(QuotaCollector(store, (), settings, clock))
    client = RunningJobsClient(target, PollSettings(retries=0))
    poller = QuotaPoller(target, client, settings, store, observer, clock=clock)
    return clock, registry, client, poller


def series(registry: CollectorRegistry, prefix: str = "maxcompute_") -> dict:
    got = values(generate_latest(registry).decode())
    return {k: v for k, v in got.items() if k[0].startswith(prefix)}


def key(name: str, **labels: str) -> tuple:
    return (name, *sorted({"region": "cn-hangzhou", **labels}.items()))


async def test_capacity_and_usage_become_exact_series_with_their_health() -> None:
    clock, registry, client, poller = parts()
    with respx.mock() as mock:
        mock.get(BASE).mock(return_value=httpx.Response(200, json=LISTING))
        mock.get(f"{BASE}/prod_p/usage").mock(
            side_effect=lambda request: httpx.Response(
                200, json=usage(200.0 if "subQuotaNickname" in request.url.params else 250.0)
            )
        )
        assert await poller.poll_quotas() is True
        assert await poller.poll_usage() is True
    await client.aclose()
    clock.now = NOW + 30.0
    got = series(registry, "maxcompute_quota")
    assert got == {
        key("maxcompute_quota_reserved_cu", quota="prod_p"): 400,
        key("maxcompute_quota_reserved_cu", quota="etl"): 300,
        key("maxcompute_quota_max_cu", quota="prod_p"): 600,
        key("maxcompute_quota_max_cu", quota="etl"): 400,
        key(
            "maxcompute_quota_info", quota="prod_p", parent_quota="", level="1", plan="day",
            billing_method="subscription", scheduler_type="", status="",
        ): 1,
        key(
            "maxcompute_quota_info", quota="etl", parent_quota="prod_p", level="2", plan="day",
            billing_method="subscription", scheduler_type="", status="",
        ): 1,
        key("maxcompute_quota_used_cpu_cores", quota="prod_p"): 250,
        key("maxcompute_quota_used_cpu_cores", quota="etl"): 200,
        key("maxcompute_quota_requested_cpu_cores", quota="prod_p"): 500,
        key("maxcompute_quota_requested_cpu_cores", quota="etl"): 400,
        key("maxcompute_quota_usage_age_seconds", quota="prod_p"): 90,
        key("maxcompute_quota_usage_age_seconds", quota="etl"): 90,
    }  # fmt: skip
    health = series(registry, "maxcompute_exporter_quota_poll_")
    for operation, interval in (("ListQuotas", 300), ("GetQuotaUsage", 60)):
        assert health[key("maxcompute_exporter_quota_poll_up", operation=operation)] == 1
        last = key(
            "maxcompute_exporter_quota_poll_last_success_timestamp_seconds", operation=operation
        )
        assert health[last] == NOW
        assert (
            health[key("maxcompute_exporter_quota_poll_interval_seconds", operation=operation)]
            == interval
        )


async def test_a_failing_part_is_counted_served_for_three_intervals_then_dropped() -> None:
    clock, registry, client, poller = parts()
    with respx.mock() as mock:
        route = mock.get(BASE)
        route.mock(return_value=httpx.Response(200, json=LISTING))
        usage_route = mock.get(f"{BASE}/prod_p/usage")
        usage_route.mock(return_value=httpx.Response(200, json=usage(1.0)))
        await poller.poll_quotas()
        await poller.poll_usage()
        route.mock(return_value=httpx.Response(403, json={"errorCode": "Forbidden.RAM"}))
        usage_route.mock(return_value=httpx.Response(200, json=usage(1.0, at=NOW + 540)))
        clock.now = NOW + 600.0
        assert await poller.poll_quotas() is False
        assert await poller.poll_usage() is True  # usage asks the last good listing's quotas
    await client.aclose()
    got = series(registry)
    assert got[key("maxcompute_exporter_quota_poll_up", operation="ListQuotas")] == 0
    assert got[key("maxcompute_exporter_quota_poll_up", operation="GetQuotaUsage")] == 1
    errors = key(
        "maxcompute_exporter_quota_poll_errors_total", operation="ListQuotas", reason="auth"
    )
    assert got[errors] == 1
    assert got[key("maxcompute_quota_max_cu", quota="etl")] == 400  # 600 s: within 3 x 300 s
    clock.now = NOW + 901.0
    got = series(registry)
    assert not [k for k in got if k[0] in ("maxcompute_quota_max_cu", "maxcompute_quota_info")]
    assert got[key("maxcompute_quota_used_cpu_cores", quota="etl")] == 1


async def test_usage_waits_for_the_first_listing_and_asks_nothing_without_one() -> None:
    _, registry, client, poller = parts()
    with respx.mock() as mock:
        mock.get(BASE).mock(return_value=httpx.Response(503, json={"errorCode": "Unavailable"}))
        usage_poll = asyncio.create_task(poller.poll_usage())
        await asyncio.sleep(0.05)
        assert not usage_poll.done()  # waiting for ListQuotas
        assert await poller.poll_quotas() is False
        assert await usage_poll is False
        assert len(mock.calls) == 1
    await client.aclose()
    got = series(registry)
    assert key("maxcompute_exporter_quota_poll_up", operation="GetQuotaUsage") not in got
    assert (
        got[key("maxcompute_exporter_quota_api_requests_total", operation="ListQuotas", code="503")]
        == 1
    )


async def test_bad_values_give_no_series_and_are_counted_never_a_crash() -> None:
    _, registry, client, poller = parts()
    hostile = {
        **OK,
        "data": {
            "quotaInfoList": [
                {"nickName": "p", "parameter": {"minCU": "n/a", "maxCU": float("nan")}},
                {"nickName": "bad\nname"},
                None,
            ],
            "marker": None,
        },
    }
    with respx.mock() as mock:
        mock.get(BASE).mock(
            return_value=httpx.Response(200, content=json.dumps(hostile).replace("NaN", "1e999"))
        )
        mock.get(f"{BASE}/p/usage").mock(
            return_value=httpx.Response(
                200,
                json={**OK, "data": {"metrics": {"timestamps": [1], "usedCpu": "x", "cpuX": []}}},
            )
        )
        assert await poller.poll_quotas() is True
        assert await poller.poll_usage() is True
    await client.aclose()
    got = series(registry)
    assert [k[0] for k in got if k[0].startswith("maxcompute_quota_")] == ["maxcompute_quota_info"]
    invalid = "maxcompute_exporter_quota_invalid_values_total"
    assert got[key(invalid, operation="ListQuotas")] == 4  # minCU, maxCU, a bad name, None
    # misaligned usedCpu, unknown cpuX, and a timestamp of 1970 (outside the asked window)
    assert got[key(invalid, operation="GetQuotaUsage")] == 3
