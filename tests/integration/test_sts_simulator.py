"""The simulator's STS side: issued triples are accepted until they expire, refused after."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from exporter.config import Credentials
from exporter.demo.simulator import ApiSimulator
from exporter.demo.sts_simulator import CredentialServer, StsIssuer, rpc_signature
from tests.integration.test_simulator import request


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def simulator(clock: Clock) -> Iterator[ApiSimulator]:
    sim = ApiSimulator([], credentials={}, clock=clock).start()
    yield sim
    sim.stop()


def test_an_issued_triple_is_accepted_until_its_expiry(
    simulator: ApiSimulator, clock: Clock
) -> None:
    issued = StsIssuer(simulator.state, lifetime=30).issue()
    assert issued.expires_at == clock.now + 30
    credentials = Credentials(issued.access_key_id, issued.access_key_secret, issued.security_token)
    query = {"from": "1", "to": "2"}
    clock.now += 29.9
    assert request(simulator, query, credentials).status_code == 200
    clock.now += 0.1
    expired = request(simulator, query, credentials)
    assert (expired.status_code, expired.json()["errorCode"]) == (
        400,
        "InvalidSecurityToken.Expired",
    )
    assert simulator.state.expired_token_requests == 1
    # Without its token the key is refused as an unsigned STS request, not served.
    bare = request(simulator, query, Credentials(issued.access_key_id, issued.access_key_secret))
    assert bare.json()["errorCode"] == "IncompleteSignature"


def test_the_credentials_uri_answers_in_the_sdk_format(simulator: ApiSimulator) -> None:
    server = CredentialServer(StsIssuer(simulator.state, lifetime=60)).start()
    try:
        body = httpx.get(f"{server.url}/credentials").json()
    finally:
        server.stop()
    (issued,) = server.issuer.issued
    assert body == {
        "Code": "Success",
        "AccessKeyId": issued.access_key_id,
        "AccessKeySecret": issued.access_key_secret,
        "SecurityToken": issued.security_token,
        "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued.expires_at)),
    }


def test_assume_role_needs_a_request_signed_by_a_known_caller(simulator: ApiSimulator) -> None:
    role = "acs:ram::1:role/r"
    server = CredentialServer(
        StsIssuer(simulator.state, lifetime=60), role_arn=role, callers={"LTAIc": "secret"}
    ).start()
    query = {"Action": "AssumeRole", "AccessKeyId": "LTAIc", "RoleArn": role, "Format": "JSON"}
    try:
        good = httpx.get(server.url, params={**query, "Signature": rpc_signature("secret", query)})
        bad = httpx.get(server.url, params={**query, "Signature": rpc_signature("other", query)})
    finally:
        server.stop()
    assert good.status_code == 200
    assert good.json()["Credentials"]["AccessKeyId"] == server.issuer.issued[0].access_key_id
    assert (bad.status_code, bad.json()["Code"]) == (400, "SignatureDoesNotMatch")
