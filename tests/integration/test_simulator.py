"""The simulator checks requests and pages results the way the service does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from exporter.api.auth.signing import RequestToSign, canonical_query, sign_request
from exporter.api.transport.client import RunningJobsClient
from exporter.api.wire.pages import TimeSlice
from exporter.config import Credentials, PollSettings
from exporter.demo.simulator import ApiSimulator, Faults
from tests.support.jobs import NOW, job_record, make_target

KEY = Credentials("LTAIsim", "sim-secret")
STS = Credentials("STS.sim", "sts-secret", "sts-token")


@pytest.fixture
def simulator() -> Iterator[ApiSimulator]:
    jobs = [
        job_record("early", submitted=NOW - 100, owner="RAM$a:1", quota="q1"),
        job_record("edge-from", submitted=NOW - 50, owner="RAM$b:2", quota="q2"),
        job_record("middle", submitted=NOW - 30, owner="RAM$a:1", quota="q 3"),
        job_record("edge-to", submitted=NOW, owner="RAM$b:2", quota="q1"),
        job_record("late", submitted=NOW + 1, owner="RAM$a:1", quota="q1"),
    ]
    sim = ApiSimulator(
        jobs,
        credentials={
            KEY.access_key_id: (KEY.access_key_secret, None),
            STS.access_key_id: (STS.access_key_secret, STS.security_token),
        },
    ).start()
    yield sim
    sim.stop()


def signed_headers(
    sim: ApiSimulator, query: dict[str, str], credentials: Credentials = KEY, nonce: str = ""
) -> dict[str, str]:
    request = RequestToSign(
        method="GET",
        host=sim.url.removeprefix("http://"),
        pathname="/api/v1/jobs/runningJobs",
        query=query,
        action="GetRunningJobs",
        version="2022-01-04",
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        nonce=nonce or uuid.uuid4().hex,
    )
    return sign_request(credentials, request)


def request(
    sim: ApiSimulator, query: dict[str, str], credentials: Credentials = KEY, tamper=None
) -> httpx.Response:
    headers = signed_headers(sim, query, credentials)
    if tamper:
        tamper(headers)
    url = f"{sim.url}/api/v1/jobs/runningJobs?{canonical_query(query)}"
    return httpx.get(url, headers=headers)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [job["instanceId"] for job in response.json()["data"]["runningJobInfoList"]]


def test_window_is_a_closed_interval_on_submission_time(simulator: ApiSimulator) -> None:
    response = request(simulator, {"from": str(NOW - 50), "to": str(NOW), "pageSize": "20"})
    assert ids(response) == ["edge-from", "middle", "edge-to"]
    assert response.json()["data"]["totalCount"] == 3


def test_from_equal_to_to_is_empty(simulator: ApiSimulator) -> None:
    response = request(simulator, {"from": str(NOW), "to": str(NOW)})
    assert ids(response) == []
    assert response.json()["data"]["totalCount"] == 0


def test_owner_and_quota_filters(simulator: ApiSimulator) -> None:
    window = {"from": str(NOW - 1000), "to": str(NOW + 1000)}
    assert ids(request(simulator, {**window, "jobOwnerList": "RAM$b:2"})) == [
        "edge-from",
        "edge-to",
    ]
    assert ids(request(simulator, {**window, "quotaNicknameList": "q 3,q2"})) == [
        "edge-from",
        "middle",
    ]


def test_paging_defaults_to_10_and_refuses_more_than_20(simulator: ApiSimulator) -> None:
    simulator.set_jobs([job_record(f"j{n:02d}", submitted=NOW) for n in range(25)])
    window = {"from": str(NOW - 1), "to": str(NOW)}
    assert len(ids(request(simulator, window))) == 10
    assert ids(request(simulator, {**window, "pageNumber": "3", "pageSize": "10"})) == [
        "j20",
        "j21",
        "j22",
        "j23",
        "j24",
    ]
    response = request(simulator, {**window, "pageSize": "21"})
    assert (response.status_code, response.json()["errorCode"]) == (400, "InvalidParameter")


@pytest.mark.parametrize(
    ("credentials", "tamper", "status", "code"),
    [
        (Credentials("LTAIsim", "wrong-secret"), None, 400, "SignatureDoesNotMatch"),
        (Credentials("LTAIunknown", "x"), None, 404, "InvalidAccessKeyId.NotFound"),
        (
            KEY,
            lambda h: h.update({"x-acs-date": "2020-01-01T00:00:00Z"}),
            400,
            "InvalidTimeStamp.Expired",
        ),
        (KEY, lambda h: h.pop("Authorization"), 400, "IncompleteSignature"),
        (KEY, lambda h: h.update({"x-acs-action": "ListProjects"}), 400, "MissingAction"),
        (Credentials("STS.sim", "sts-secret"), None, 400, "IncompleteSignature"),
        (
            Credentials("STS.sim", "sts-secret", "other-token"),
            None,
            400,
            "InvalidSecurityToken.Mismatch",
        ),
    ],
)
def test_bad_signatures_are_refused_like_the_service(
    simulator: ApiSimulator, credentials, tamper, status, code
) -> None:
    response = request(simulator, {"from": "1", "to": "2"}, credentials, tamper)
    assert (response.status_code, response.json()["errorCode"]) == (status, code)


def test_sts_credentials_are_accepted(simulator: ApiSimulator) -> None:
    assert ids(request(simulator, {"from": str(NOW - 10), "to": str(NOW)}, STS)) == ["edge-to"]


def test_a_replayed_nonce_is_refused(simulator: ApiSimulator) -> None:
    query = {"from": "1", "to": "2"}
    headers = signed_headers(simulator, query, nonce="fixed-nonce")
    url = f"{simulator.url}/api/v1/jobs/runningJobs?{canonical_query(query)}"
    assert httpx.get(url, headers=headers).status_code == 200
    replay = httpx.get(url, headers=headers)
    assert (replay.status_code, replay.json()["errorCode"]) == (400, "SignatureNonceUsed")


def test_form_encoded_query_verifies_too(simulator: ApiSimulator) -> None:
    # The SDK may send '+' for a space; the signature is over the decoded values.
    query = {"from": str(NOW - 1000), "to": str(NOW), "quotaNicknameList": "q 3"}
    headers = signed_headers(simulator, query)
    url = (
        f"{simulator.url}/api/v1/jobs/runningJobs?from={NOW - 1000}&to={NOW}&quotaNicknameList=q+3"
    )
    assert ids(httpx.get(url, headers=headers)) == ["middle"]


async def test_the_exporter_client_is_accepted(simulator: ApiSimulator) -> None:
    target = make_target(simulator.url, credentials=KEY, quotas=("q1",))
    client = RunningJobsClient(target, PollSettings())
    try:
        page = await client.fetch_page(TimeSlice(NOW - 1000, NOW + 1000), 1)
    finally:
        await client.aclose()
    assert [job.instance_id for job in page.jobs] == ["early", "edge-to", "late"]


def test_injected_faults(simulator: ApiSimulator) -> None:
    query = {"from": str(NOW - 1000), "to": str(NOW)}
    simulator.set_faults(Faults(throttle=1.0))
    response = request(simulator, query)
    assert (response.status_code, response.json()["errorCode"]) == (429, "Throttling.User")
    assert response.headers["retry-after"] == "1"
    simulator.set_faults(Faults(server_error=1.0))
    assert request(simulator, query).status_code == 503
    simulator.set_faults(Faults(disconnect=1.0))
    with pytest.raises(httpx.TransportError):
        request(simulator, query)
    simulator.set_faults(Faults(malformed=1.0, seed=1))
    records = request(simulator, query).json()["data"]["runningJobInfoList"]
    assert len(records) == 4
    assert all(r != job_record(r.get("instanceId", "")) for r in records)


@pytest.mark.parametrize("order", ["ascending", "descending", "unordered"])
def test_a_slice_of_an_ordered_listing_is_found_as_a_scan_would(order: str) -> None:
    from exporter.demo.simulator_state import SimulatorState

    records = [job_record(f"j{n:03d}", submitted=NOW - 500 + (n * 7) % 300) for n in range(200)]
    if order != "unordered":
        records.sort(key=lambda r: r["submittedAtTime"], reverse=order == "descending")
    state = SimulatorState(jobs=lambda now: records)
    for start, end in [(NOW - 500, NOW - 400), (NOW - 300, NOW - 299), (NOW - 1000, NOW)]:
        expected = [r for r in records if start <= r["submittedAtTime"] <= end]
        assert state.matching(start, end, frozenset(), frozenset()) == expected
