"""ListQuotas and GetQuotaUsage read from answers as the service gives them (respx): marker
paging, both envelopes, level-1 free maps with adhocCU, sub-quota to parent, missing and null
fields, usage series alignment, unknown keys, 403 and throttling."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from exporter.api.errors import ApiError
from exporter.api.transport.client import RunningJobsClient
from exporter.api.transport.quota_client import QuotaClient
from exporter.api.wire.quota_usage import QuotaUsage, UsagePoint, parse_usage
from exporter.api.wire.quotas import QuotaCapacity, parse_quota_page
from exporter.config import PollSettings
from tests.support.jobs import NOW, make_target

BASE = "https://maxcompute.cn-hangzhou.aliyuncs.com/api/v1/quotas"
OK = {"requestId": "0bc3b4ab16684833172127321e2c25", "httpCode": 200, "errorCode": "success"}


def level1(nick: str, parameter: dict, subs: list, **extra: object) -> dict:
    return {
        "nickName": nick,
        "status": "ON",
        "type": "FUXI_OFFLINE",
        "billingPolicy": {"billingMethod": "subscription"},
        "scheduleInfo": {"currPlan": "day", "nextPlan": "night", "nextTime": "0800"},
        "parameter": parameter,
        "subQuotaInfoList": subs,
        **extra,
    }


def sub(nick: str, **parameter: object) -> dict:
    return {"nickName": nick, "status": "ON", "schedulerType": "Fifo", "parameter": parameter}


def body(**fields: object) -> bytes:
    return json.dumps({**OK, **fields}).encode()


def test_a_level1_free_map_with_adhoc_cu_and_its_sub_quotas_mapped_to_it() -> None:
    record = level1(
        "prod_p",
        {"minCU": 400, "maxCU": 600.0, "adhocCU": "100"},
        [sub("etl_quota", minCU=300, maxCU=400, elasticReservedCU=50, singleJobCULimit=200)],
    )
    page = parse_quota_page(200, body(quotaInfoList=[record], marker=""))
    assert page == parse_quota_page(200, body(data={"quotaInfoList": [record], "marker": ""}))
    assert page.quotas == (
        QuotaCapacity("prod_p", "", 1, "day", "subscription", "", "ON", 400.0, 600.0, 100.0, None),
        QuotaCapacity(
            "etl_quota", "prod_p", 2, "day", "subscription", "Fifo", "ON", 300.0, 400.0, 50.0, 200.0
        ),
    )
    assert (page.marker, page.skipped) == ("", 0)


def test_missing_null_and_mistyped_fields_give_no_value_and_are_counted() -> None:
    records = [
        level1(
            "payg_p",
            {"minCU": None, "maxCU": "lots", "elasticReservedCU": True},
            [sub("os_PayAsYouGoQuota"), {"nickName": None}, "not a record"],
            billingPolicy={"billingMethod": "payasyougo"},
            scheduleInfo=None,
            status="ON \n",
        ),
        {"status": "ON"},  # no nickName: skipped
        7,
    ]
    page = parse_quota_page(200, body(quotaInfoList=records, NextToken="next-1"))
    assert page.quotas == (
        QuotaCapacity("payg_p", "", 1, "", "payasyougo", "", "ON", None, None, None, None),
        QuotaCapacity(
            "os_PayAsYouGoQuota",
            "payg_p",
            2,
            "",
            "payasyougo",
            "Fifo",
            "ON",
            None,
            None,
            None,
            None,
        ),
    )
    # "lots", True, {"nickName": None}, "not a record", {"status": "ON"}, 7
    assert page.skipped == 6
    assert page.marker == "next-1"


@pytest.mark.parametrize(
    ("status", "payload", "reason"),
    [
        (200, {"quotaInfoList": {"a": 1}}, "invalid_response"),
        (200, {"somethingElse": []}, "invalid_response"),
        (403, {"errorCode": "Forbidden.RAM", "errorMsg": "not authorized"}, "auth"),
        (429, {"errorCode": "Throttling.User", "errorMsg": "flow control"}, "throttled"),
        (503, {"errorCode": "ServiceUnavailable"}, "server_error"),
    ],
)
def test_bad_answers_fail_with_a_reason(status: int, payload: dict, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_quota_page(status, json.dumps(payload).encode())
    assert caught.value.reason == reason


def usage_body(metrics: object) -> bytes:
    return body(data={"metrics": metrics, "plot": []})


def test_usage_keeps_the_latest_non_null_point_of_aligned_series() -> None:
    stamps = [(NOW - 180) * 1000, (NOW - 120) * 1000, (NOW - 60) * 1000, NOW * 1000]
    usage = parse_usage(
        200,
        usage_body(
            {
                "timestamps": stamps,
                "usedCpu": [100, 120, 130, None],
                "adhocUsedCpu": [0, 5, None, None],
                "requestCpu": [150, None, None, None],
                "minCpu": [400, 400, 400, 400],
                "maxCpu": [1, 2],  # misaligned: skipped, counted
                "gpuMagic": [1, 2, 3, 4],  # unknown key: skipped, counted
            }
        ),
        NOW,
    )
    assert usage == QuotaUsage(
        used=UsagePoint(130.0, NOW - 60.0), requested=UsagePoint(150.0, NOW - 180.0), skipped=2
    )


def test_usage_prefers_total_then_pay_as_you_go_and_counts_bad_values() -> None:
    stamps = [NOW * 1000 - 60_000, NOW * 1000]
    total = parse_usage(
        200, usage_body({"timestamps": stamps, "totalUsedCpu": [7, 9], "usedCpu": [1, 2]}), NOW
    )
    assert total.used == UsagePoint(9.0, float(NOW))
    postpay = parse_usage(
        200, usage_body({"timestamps": stamps, "postpay-usedCpu": [3.5, "x"]}), NOW
    )
    assert (postpay.used, postpay.requested, postpay.skipped) == (
        UsagePoint(3.5, NOW - 60.0),
        None,
        1,
    )
    assert parse_usage(200, usage_body(None), NOW) == QuotaUsage(None, None)
    with pytest.raises(ApiError) as caught:
        parse_usage(200, usage_body([1, 2]), NOW)
    assert caught.value.reason == "invalid_response"


def quota_client(codes: list) -> tuple[RunningJobsClient, QuotaClient]:
    client = RunningJobsClient(make_target(), PollSettings(retries=2, retry_backoff=0.0))
    return client, QuotaClient(client, lambda op, code: codes.append((op, code)), per_page=2)


async def test_list_quotas_follows_the_marker_across_envelopes_until_it_is_empty() -> None:
    pages = {
        "": body(quotaInfoList=[level1("a_p", {"maxCU": 10}, [sub("a1", maxCU=5)])], marker="m1"),
        "m1": body(data={"quotaInfoList": [], "marker": "m2"}),  # a short page: never the end
        "m2": body(quotaInfoList=[level1("b_p", {}, [sub("a1"), sub("b1")])], marker=""),
    }
    seen: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(200, content=pages[request.url.params.get("marker", "")])

    codes: list = []
    client, api = quota_client(codes)
    with respx.mock() as mock:
        mock.get(BASE).mock(side_effect=answer)
        listing = await api.list_quotas()
    await client.aclose()
    # The first page sends no marker, as the official SDK leaves an unset one out.
    assert seen == [
        {"maxItem": "2"},
        {"maxItem": "2", "marker": "m1"},
        {"maxItem": "2", "marker": "m2"},
    ]
    assert [(q.nickname, q.parent) for q in listing.quotas] == [
        ("a_p", ""), ("a1", "a_p"), ("b_p", ""), ("b1", "b_p")
    ]  # fmt: skip
    assert (listing.requests, listing.skipped) == (3, 1)  # a1 listed twice
    assert codes == [("ListQuotas", "200")] * 3


async def test_throttling_is_retried_and_403_names_the_missing_ram_action() -> None:
    throttled = httpx.Response(429, json={"errorCode": "Throttling.User"})
    denied = httpx.Response(403, json={"errorCode": "Forbidden.RAM", "errorMsg": "denied"})
    codes: list = []
    client, api = quota_client(codes)
    with respx.mock() as mock:
        mock.get(BASE).mock(
            side_effect=[throttled, httpx.Response(200, content=body(quotaInfoList=None))]
        )
        mock.get(f"{BASE}/a_p/usage").mock(return_value=denied)
        listing = await api.list_quotas()
        with pytest.raises(ApiError) as caught:
            await api.usage("a_p", "a1", NOW)
        usage_query = dict(mock.calls[-1].request.url.params)
    await client.aclose()
    assert listing.quotas == ()
    assert codes == [("ListQuotas", "429"), ("ListQuotas", "200"), ("GetQuotaUsage", "403")]
    assert caught.value.reason == "auth"
    assert str(caught.value) == (
        "GetQuotaUsage failed: denied (the RAM policy must allow odps:GetQuotaUsage) "
        "status=403 errorCode=Forbidden.RAM"
    )
    assert usage_query == {
        "from": str(NOW - 600),
        "to": str(NOW),
        "productId": "ODPS",
        "aggMethod": "max",
        "subQuotaNickname": "a1",
    }


async def test_markers_that_never_end_fail_the_listing() -> None:
    codes: list = []
    client, api = quota_client(codes)
    with respx.mock() as mock:
        mock.get(BASE).mock(return_value=httpx.Response(200, content=body(marker="again")))
        with pytest.raises(ApiError) as caught:
            await api.list_quotas()
    await client.aclose()
    assert caught.value.reason == "invalid_response"
    assert len(codes) == 2


async def test_throttling_inside_a_200_body_is_retried_too() -> None:
    throttled = httpx.Response(
        200, json={"httpCode": 429, "errorCode": "Throttling.User", "errorMsg": "slow down"}
    )
    stamps = [NOW * 1000]
    good = httpx.Response(200, content=usage_body({"timestamps": stamps, "usedCpu": [4]}))
    codes: list = []
    client, api = quota_client(codes)
    with respx.mock() as mock:
        mock.get(f"{BASE}/a_p/usage").mock(side_effect=[throttled, good])
        usage, attempts = await api.usage("a_p", None, NOW)
        asked = dict(mock.calls[-1].request.url.params)
    await client.aclose()
    assert (usage.used, attempts) == (UsagePoint(4.0, float(NOW)), 2)
    assert "subQuotaNickname" not in asked  # the level-1 quota itself
