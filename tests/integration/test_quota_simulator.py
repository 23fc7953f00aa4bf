"""The simulator's quota operations behave as the service's: signed requests over real HTTP,
marker paging with both envelopes, plans that switch, a denied action, the same faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from exporter.api.errors import ApiError
from exporter.api.transport.client import RunningJobsClient
from exporter.api.transport.quota_client import QuotaClient
from exporter.api.wire.quota_usage import UsagePoint
from exporter.config import Credentials, PollSettings
from exporter.demo.launch import demo_quotas
from exporter.demo.quota_simulator import (
    QuotaCatalog,
    level1_record,
    list_quotas_body,
    used_cores,
)
from exporter.demo.simulator import ApiSimulator, Faults
from exporter.demo.workload import CYCLE_SECONDS, phased_workload
from tests.support.jobs import make_target

KEY = ("LTAIquotasim", "quota-sim-secret")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def demo() -> Iterator[tuple[ApiSimulator, Clock]]:
    start = float(int(time.time()) // 60 * 60)
    clock = Clock(start + 30)
    simulator = ApiSimulator(
        phased_workload(start, jobs_per_quota=4),
        credentials={KEY[0]: (KEY[1], None)},
        quotas=demo_quotas(start),
        clock=clock,
    ).start()
    yield simulator, clock
    simulator.stop()


def client_for(simulator: ApiSimulator, codes: list) -> tuple[RunningJobsClient, QuotaClient]:
    target = make_target(simulator.url, credentials=Credentials(*KEY))
    client = RunningJobsClient(target, PollSettings(retries=0, timeout=5.0))
    return client, QuotaClient(client, lambda op, code: codes.append((op, code)))


def test_pages_follow_the_marker_and_alternate_envelopes() -> None:
    catalog = demo_quotas(0.0)  # 3 level-1 quotas, 2 a page
    first = list_quotas_body(catalog, {"maxItem": "50", "marker": ""}, 0.0)
    second = list_quotas_body(catalog, {"maxItem": "50", "marker": first["marker"]}, 0.0)
    assert [q["nickName"] for q in first["quotaInfoList"]] == ["prod_p", "ml_p"]
    assert first["marker"] == first["NextToken"] == "mk2"
    assert [q["nickName"] for q in second["data"]["quotaInfoList"]] == ["os_PayAsYouGoQuota_p"]
    assert second["data"]["marker"] == ""
    ml = first["quotaInfoList"][1]
    assert ml["parameter"] == {"minCU": 120, "maxCU": 160, "adhocCU": 50.0}
    payg = second["data"]["quotaInfoList"][0]
    assert payg["billingPolicy"]["billingMethod"] == "payasyougo" and payg["parameter"] == {}


def test_plans_switch_twice_a_cycle() -> None:
    catalog = demo_quotas(1000.0)
    (prod,) = [q for q in catalog.quotas if q.nickname == "prod_p"]
    plans = [
        level1_record(catalog, prod, 1000.0 + t)["scheduleInfo"]["currPlan"]
        for t in (0, CYCLE_SECONDS / 2 - 1, CYCLE_SECONDS / 2, CYCLE_SECONDS - 1, CYCLE_SECONDS)
    ]
    assert plans == ["day", "day", "night", "night", "day"]
    assert level1_record(catalog, prod, 1000.0)["parameter"]["minCU"] == 520
    assert level1_record(catalog, prod, 1000.0 + CYCLE_SECONDS / 2)["parameter"]["minCU"] == 600
    # Faster demo, faster plans: the same switches at a tenth of the time.
    fast = demo_quotas(1000.0, speed=10.0)
    assert fast.plan(prod, 1000.0 + CYCLE_SECONDS / 20 - 1)[0] == "day"
    assert fast.plan(prod, 1000.0 + CYCLE_SECONDS / 20) == ("night", 600)


def test_prod_p_stays_within_its_reserve_while_etl_quota_is_full() -> None:
    """Only etl_quota runs beyond its reserve: prod_p's day plan holds etl_quota full and
    adhoc_quota at its highest."""
    start = 1_800_000_000.0
    catalog = demo_quotas(start)
    (prod,) = [q for q in catalog.quotas if q.nickname == "prod_p"]
    etl = next(sub for sub in prod.subs if sub.nickname == "etl_quota")
    workload = phased_workload(start, jobs_per_quota=40)
    for elapsed in range(0, CYCLE_SECONDS, 15):
        jobs = workload(start + elapsed)
        assert used_cores(catalog, jobs, prod, None) < catalog.plan(prod, start + elapsed)[1]
    full = used_cores(catalog, workload(start + 400), prod, "etl_quota")
    assert full > etl.min_cu


async def test_signed_requests_list_every_quota_and_read_usage_from_the_jobs(demo) -> None:
    simulator, clock = demo
    codes: list = []
    client, api = client_for(simulator, codes)
    try:
        listing = await api.list_quotas()
        usage, _ = await api.usage("prod_p", "etl_quota", clock.now)
    finally:
        await client.aclose()
    assert [(q.nickname, q.parent) for q in listing.quotas] == [
        ("prod_p", ""), ("etl_quota", "prod_p"), ("adhoc_quota", "prod_p"),
        ("ml_p", ""), ("ml_quota", "ml_p"),
        ("os_PayAsYouGoQuota_p", ""), ("os_PayAsYouGoQuota", "os_PayAsYouGoQuota_p"),
    ]  # fmt: skip
    assert codes[:2] == [("ListQuotas", "200")] * 2
    shares = sum(
        job["cuSnapshot"]
        for job in simulator.state.jobs(clock.now)
        if job["quotaNickname"] == "etl_quota"
    )
    # The minute being aggregated is null: the newest point is the minute before.
    minute = clock.now // 60 * 60 - 60
    assert usage.used == UsagePoint(round(shares * 400, 3), minute)
    assert usage.requested == UsagePoint(round(round(shares * 400, 3) * 1.2, 3), minute)


async def test_denied_actions_and_faults_answer_as_the_service(demo) -> None:
    simulator, clock = demo
    codes: list = []
    client, api = client_for(simulator, codes)
    try:
        simulator.quotas = QuotaCatalog(
            simulator.quotas.quotas, denied=frozenset({"GetQuotaUsage"})
        )
        with pytest.raises(ApiError) as denied:
            await api.usage("prod_p", None, clock.now)
        simulator.set_faults(Faults(server_error=1.0))
        with pytest.raises(ApiError) as failing:
            await api.list_quotas()
    finally:
        await client.aclose()
    assert denied.value.reason == "auth"
    assert "(the RAM policy must allow odps:GetQuotaUsage)" in str(denied.value)
    assert failing.value.reason == "server_error"
    assert codes == [("GetQuotaUsage", "403"), ("ListQuotas", "503")]


def test_unsigned_or_unknown_quota_paths_are_refused(demo) -> None:
    simulator, _ = demo
    unsigned = httpx.get(simulator.url + "/api/v1/quotas?maxItem=1&marker=", timeout=5)
    assert unsigned.status_code == 400
    assert json.loads(unsigned.content)["errorCode"] == "MissingAction"
    elsewhere = httpx.get(simulator.url + "/api/v1/quotas/x/other", timeout=5)
    assert elsewhere.status_code == 404
