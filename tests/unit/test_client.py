"""The API client against a mocked GetRunningJobs (respx): signing, filters, errors, retries,
bad records, and a whole window read through it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from exporter.api.auth.signing import authorization
from exporter.api.errors import ApiError
from exporter.api.transport.client import RunningJobsClient
from exporter.api.transport.ratelimit import AdaptiveRate, InFlightLimit
from exporter.api.wire.jobs import RunningJob
from exporter.api.wire.pages import JobFilter, TimeSlice
from exporter.config import PollSettings
from exporter.polling.read.window_read import WindowReader
from tests.support.jobs import NOW, envelope, job_record, make_target, many_records

URL = "https://maxcompute.cn-hangzhou.aliyuncs.com/api/v1/jobs/runningJobs"


class FakeApi:
    """Serves ``records`` like the service: filtered by submission time, paged; remembers every
    request."""

    def __init__(self, records: list[dict], delay: float = 0.0) -> None:
        self.records = records
        self.delay = delay
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            params = request.url.params
            number, size = int(params["pageNumber"]), int(params["pageSize"])
            start, end = int(params["from"]), int(params["to"])
            listed = [r for r in self.records if submitted_in(r, start, end)]
            page = listed[(number - 1) * size : number * size]
            body = json.dumps(envelope(page, len(listed), number, size))
            return httpx.Response(200, content=body.encode())
        finally:
            self.in_flight -= 1


def submitted_in(record: object, start: int, end: int) -> bool:
    """As the service filters: by submission time; a record without one is always listed."""
    submitted = record.get("submittedAtTime") if isinstance(record, dict) else None
    if isinstance(submitted, bool) or not isinstance(submitted, int):
        return True
    return start <= submitted <= end


WINDOW = TimeSlice(NOW - 86400, NOW)


async def fetch(api, settings: PollSettings, target=None, codes=None) -> tuple[list, object]:
    """A first poll's read of the whole window through the client, as the poller makes it."""
    client = RunningJobsClient(
        target or make_target(),
        settings,
        on_request=(codes.append if codes is not None else lambda code: None),
    )
    reader = WindowReader(
        client.fetch_page_with_retries, concurrency=settings.page_concurrency, request_cap=10_000
    )
    try:
        with respx.mock(using="aiohttp", assert_all_called=False) as mock:
            mock.get(URL).mock(side_effect=api)
            result = await reader.read(WINDOW, [WINDOW])
    finally:
        await client.aclose()
    jobs: list[RunningJob] = list(result.jobs())
    return jobs, result


@pytest.mark.parametrize(("count", "most_requests"), [(0, 1), (1, 1), (20, 1), (21, 4), (1000, 85)])
async def test_reads_every_job_once(count: int, most_requests: int, settings: PollSettings) -> None:
    api = FakeApi(many_records(count))
    jobs, result = await fetch(api, settings)
    assert sorted(j.instance_id for j in jobs) == [f"job-{n:05d}" for n in range(count)]
    assert result.requests == len(api.requests) <= most_requests


async def test_pages_after_the_first_are_fetched_concurrently_up_to_the_limit() -> None:
    settings = PollSettings(page_concurrency=3, timeout=5.0, rate_limit=10_000.0)
    api = FakeApi(many_records(200), delay=0.02)
    await fetch(api, settings)
    assert api.max_in_flight == 3


async def test_sends_window_page_size_and_comma_joined_filters(settings: PollSettings) -> None:
    target = make_target(quotas=("my_quota", "q 2"), owners=("ALIYUN$a@b.com", "RAM$x:y"))
    api = FakeApi([])
    await fetch(api, settings, target)
    (request,) = api.requests
    assert dict(request.url.params) == {
        "from": str(NOW - 86400),
        "to": str(NOW),
        "pageNumber": "1",
        "pageSize": "20",
        "jobOwnerList": "ALIYUN$a@b.com,RAM$x:y",
        "quotaNicknameList": "my_quota,q 2",
    }
    assert request.headers["x-acs-action"] == "GetRunningJobs"
    assert request.headers["x-acs-version"] == "2022-01-04"
    assert request.headers["host"] == "maxcompute.cn-hangzhou.aliyuncs.com"


async def test_every_request_carries_a_valid_signature_and_a_fresh_nonce(
    settings: PollSettings,
) -> None:
    target = make_target()
    api = FakeApi(many_records(45))
    await fetch(api, settings, target)
    nonces = set()
    for request in api.requests:
        signed = request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        headers = {name: request.headers[name] for name in signed.split(";")}
        query = dict(request.url.params)
        expected = authorization(target.credentials, "GET", request.url.path, query, headers)
        assert request.headers["authorization"] == expected
        nonces.add(request.headers["x-acs-signature-nonce"])
    assert len(nonces) == len(api.requests) > 3


async def test_sts_token_is_sent_and_signed(settings: PollSettings) -> None:
    from exporter.config import Credentials

    target = make_target(credentials=Credentials("STS.id", "sts-secret", "token/with=chars"))
    api = FakeApi([])
    await fetch(api, settings, target)
    (request,) = api.requests
    assert request.headers["x-acs-security-token"] == "token/with=chars"
    assert "x-acs-security-token" in request.headers["authorization"]


async def test_a_job_listed_twice_is_a_defect_of_the_read_not_a_count(
    settings: PollSettings,
) -> None:
    records = many_records(40)
    records.insert(20, dict(records[19]))  # job-00019 listed twice, whatever slice is asked
    with pytest.raises(ApiError) as caught:
        await fetch(FakeApi(records), settings)
    assert caught.value.reason == "inconsistent"
    assert str(caught.value).endswith("the same instanceId twice in one read")


async def test_malformed_records_are_skipped_and_counted(settings: PollSettings) -> None:
    good = job_record("good")
    bad = [
        "not an object",
        None,
        {**job_record("a"), "cuSnapshot": None},
        {**job_record("b"), "cuSnapshot": "0.5"},
        {**job_record("c"), "submittedAtTime": True},
        {k: v for k, v in job_record("d").items() if k != "project"},
        {**job_record("e"), "progress": float("nan")},
        {**job_record("f"), "instanceId": ""},
    ]
    api = FakeApi([good, *bad])
    jobs, result = await fetch(api, settings)
    assert [j.instance_id for j in jobs] == ["good"]
    assert result.invalid == len(bad)


def responder(status: int, body, headers: dict | None = None):
    def respond(request: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers or {})

    return respond


def failure(code: str, status: int) -> dict:
    return {"requestId": "req-1", "httpCode": status, "errorCode": code, "errorMsg": "nope"}


@pytest.mark.parametrize(
    ("status", "body", "reason", "retryable", "code"),
    [
        (429, failure("Throttling.User", 429), "throttled", True, "429"),
        (400, failure("Throttling.Api", 400), "throttled", True, "400"),
        (503, failure("ServiceUnavailable", 503), "server_error", True, "503"),
        (502, b"<html>Bad Gateway</html>", "server_error", True, "502"),
        (400, failure("SignatureDoesNotMatch", 400), "auth", False, "400"),
        (404, failure("InvalidAccessKeyId.NotFound", 404), "auth", False, "404"),
        (403, failure("Forbidden.RAM", 403), "auth", False, "403"),
        (400, failure("InvalidParameter", 400), "client_error", False, "400"),
        (200, failure("InternalError", 500), "server_error", True, "200"),
        (
            200,
            {**envelope([], 0), "httpCode": 403, "errorCode": "NoPermission"},
            "auth",
            False,
            "200",
        ),
        (200, b"<html>proxy page</html>", "invalid_response", False, "200"),
        (200, b"", "invalid_response", False, "200"),
        (200, b'{"data": {"runningJobInfoList": [', "invalid_response", False, "200"),
        (200, {"httpCode": 200, "errorCode": "success"}, "invalid_response", False, "200"),
        (
            200,
            {"data": {"runningJobInfoList": {}, "totalCount": 1}},
            "invalid_response",
            False,
            "200",
        ),
        (
            200,
            {"data": {"runningJobInfoList": [], "totalCount": "3"}},
            "invalid_response",
            False,
            "200",
        ),
    ],
)
async def test_every_error_class_fails_the_fetch_with_its_reason(
    status, body, reason, retryable, code, settings: PollSettings
) -> None:
    codes: list[str] = []
    with pytest.raises(ApiError) as caught:
        await fetch(responder(status, body), settings, codes=codes)
    assert caught.value.reason == reason
    assert caught.value.retryable is retryable
    assert codes == [code]


async def test_error_carries_service_code_and_request_id_but_no_secret(
    settings: PollSettings,
) -> None:
    with pytest.raises(ApiError) as caught:
        await fetch(responder(400, failure("SignatureDoesNotMatch", 400)), settings)
    text = str(caught.value)
    assert text == (
        "GetRunningJobs failed: nope status=400 errorCode=SignatureDoesNotMatch requestId=req-1"
    )
    assert "test-secret-never-shown" not in text


async def test_retry_after_is_read_from_a_throttled_response(settings: PollSettings) -> None:
    with pytest.raises(ApiError) as caught:
        await fetch(
            responder(429, failure("Throttling.User", 429), {"Retry-After": "2.5"}), settings
        )
    assert caught.value.retry_after == 2.5


async def test_timeout_and_connection_errors(settings: PollSettings) -> None:
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    codes: list[str] = []
    with pytest.raises(ApiError) as caught:
        await fetch(timeout, settings, codes=codes)
    assert (caught.value.reason, caught.value.retryable) == ("timeout", True)
    with pytest.raises(ApiError) as caught:
        await fetch(refused, settings, codes=codes)
    assert (caught.value.reason, caught.value.retryable) == ("connection", True)
    assert codes == ["timeout", "connection_error"]


async def test_a_failing_later_page_fails_the_whole_fetch(settings: PollSettings) -> None:
    records = many_records(100)

    def api(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["pageNumber"])
        if number == 4:
            return httpx.Response(503, json=failure("ServiceUnavailable", 503))
        page = records[(number - 1) * 20 : number * 20]
        return httpx.Response(200, json=envelope(page, len(records), number))

    with pytest.raises(ApiError) as caught:
        await fetch(api, settings)
    assert caught.value.reason == "server_error"


async def test_an_oversized_body_is_refused(settings: PollSettings, monkeypatch) -> None:
    monkeypatch.setattr("exporter.api.transport.client.MAX_BODY_BYTES", 1000)
    body = envelope(many_records(20), 20)
    with pytest.raises(ApiError) as caught:
        await fetch(responder(200, body), settings)
    assert caught.value.reason == "invalid_response"
    assert "larger than" in str(caught.value)


class Script:
    """Answers each request with the next response of a script, then with the last one."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(asyncio.get_running_loop().time())
        response = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(response, Exception):
            raise response
        return response


def ok(records: list, total: int | None = None) -> httpx.Response:
    return httpx.Response(200, json=envelope(records, len(records) if total is None else total))


RETRYING = PollSettings(retries=3, retry_backoff=0.01, rate_limit=10_000.0, timeout=5.0)


@pytest.mark.parametrize(
    "transient",
    [
        httpx.Response(429, json=failure("Throttling.User", 429)),
        httpx.Response(400, json=failure("Throttling.Api", 400)),
        httpx.Response(503, json=failure("ServiceUnavailable", 503)),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
    ],
    ids=["429", "throttling-code", "503", "timeout", "connection"],
)
async def test_transient_failures_are_retried_until_they_heal(transient) -> None:
    script = Script(transient, transient, ok([job_record("a")]))
    codes: list[str] = []
    jobs, _ = await fetch(script, RETRYING, codes=codes)
    assert [j.instance_id for j in jobs] == ["a"]
    assert len(script.times) == 3
    assert codes[-1] == "200" and len(codes) == 3


async def test_retries_give_up_after_the_configured_count() -> None:
    script = Script(httpx.Response(503, json=failure("ServiceUnavailable", 503)))
    codes: list[str] = []
    with pytest.raises(ApiError) as caught:
        await fetch(script, RETRYING, codes=codes)
    assert caught.value.reason == "server_error"
    assert codes == ["503"] * 4


@pytest.mark.parametrize(
    "permanent",
    [
        httpx.Response(400, json=failure("SignatureDoesNotMatch", 400)),
        httpx.Response(403, json=failure("Forbidden.RAM", 403)),
        httpx.Response(400, json=failure("InvalidParameter", 400)),
        httpx.Response(200, content=b"<html>proxy</html>"),
    ],
    ids=["signature", "forbidden", "parameter", "html"],
)
async def test_failures_that_cannot_heal_are_not_retried(permanent) -> None:
    script = Script(permanent, ok([]))
    with pytest.raises(ApiError):
        await fetch(script, RETRYING)
    assert len(script.times) == 1


async def test_retry_after_is_honoured() -> None:
    throttled = httpx.Response(
        429, json=failure("Throttling.User", 429), headers={"Retry-After": "0.3"}
    )
    script = Script(throttled, ok([]))
    await fetch(script, RETRYING)
    assert script.times[1] - script.times[0] >= 0.3


async def test_requests_are_rate_limited_per_target() -> None:
    settings = PollSettings(page_concurrency=4, rate_limit=50.0, timeout=5.0, retries=0)
    api = FakeApi(many_records(20 * 24))
    started = asyncio.get_running_loop().time()
    await fetch(api, settings)
    elapsed = asyncio.get_running_loop().time() - started
    # N requests at 50/s (the ceiling, above the polite start) with a burst of 4.
    assert len(api.requests) > 24
    assert elapsed >= (len(api.requests) - 4) / 50


async def test_more_jobs_than_page_size_is_invalid(settings: PollSettings) -> None:
    with pytest.raises(ApiError) as caught:
        await fetch(responder(200, envelope(many_records(21), 21)), settings)
    assert caught.value.reason == "invalid_response"


async def test_a_part_of_a_dense_second_asks_for_its_own_quotas_and_owners(
    settings: PollSettings,
) -> None:
    target = make_target(quotas=("etl", "adhoc"), owners=("RAM$x:y",))
    client = RunningJobsClient(target, settings)
    part = JobFilter(quotas=("etl",), owners=("RAM$a:b", "RAM$c:d"))
    sent = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(dict(request.url.params))
        return httpx.Response(200, json=envelope([], 0))

    with respx.mock(using="aiohttp", assert_all_called=False) as mock:
        mock.get(url__startswith=target.endpoint).mock(side_effect=answer)
        await client.fetch_page(TimeSlice(NOW - 2, NOW - 1), 3, part)
        await client.fetch_page(TimeSlice(NOW - 2, NOW - 1), 1, JobFilter(quotas=("etl",)))
    await client.aclose()
    assert sent[0]["quotaNicknameList"] == "etl"
    assert sent[0]["jobOwnerList"] == "RAM$a:b,RAM$c:d"
    assert (sent[0]["from"], sent[0]["to"], sent[0]["pageNumber"]) == (
        str(NOW - 2),
        str(NOW - 1),
        "3",
    )
    assert sent[1]["quotaNicknameList"] == "etl"
    assert sent[1]["jobOwnerList"] == "RAM$x:y"  # the target's own where the part names none


def test_requests_in_flight_are_the_rate_times_the_latency_plus_one_within_the_ceiling() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=200.0)
    limit = InFlightLimit(rate, ceiling=32)
    assert limit.limit == 4  # nothing measured yet
    limit.observe(0.1)
    assert limit.limit == 21  # 200/s x 0.1 s = 20 in flight, and one more
    limit.observe(0.2)
    assert limit.latency == pytest.approx(0.12)  # a moving average
    assert limit.limit == 26
    rate.rate = 50.0
    limit.latency = 0.03
    assert limit.limit == 3  # ceil(1.5) + 1
    rate.rate = 1000.0
    limit.latency = 1.0
    assert limit.limit == 32  # the ceiling, poll.page_concurrency
    assert InFlightLimit(rate, ceiling=2).limit == 2


async def test_a_request_over_the_limit_waits_for_one_to_end() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=10.0)
    limit = InFlightLimit(rate, ceiling=32)
    limit.observe(0.1)  # 10/s x 0.1 s + 1 = 2 in flight
    await limit.acquire()
    await limit.acquire()
    third = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0.01)
    assert not third.done() and limit.in_flight == 2
    limit.release()
    await asyncio.wait_for(third, 1)
    assert limit.in_flight == 2


async def test_a_request_sent_ahead_waits_at_the_front_of_the_line() -> None:
    rate = AdaptiveRate(ceiling=1000.0, initial=10.0)
    limit = InFlightLimit(rate, ceiling=32)
    limit.observe(0.1)  # 2 in flight
    await limit.acquire()
    await limit.acquire()
    order: list[str] = []

    async def wait(name: str, ahead: bool) -> None:
        await limit.acquire(ahead)
        order.append(name)

    waiting = [asyncio.create_task(wait(f"queued{n}", False)) for n in range(3)]
    await asyncio.sleep(0.01)
    waiting += [asyncio.create_task(wait(f"chain{n}", True)) for n in range(2)]
    await asyncio.sleep(0.01)
    for _ in range(5):
        limit.release()
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    # Ahead of the others, and in their own order among themselves.
    assert order == ["chain0", "chain1", "queued0", "queued1", "queued2"]
