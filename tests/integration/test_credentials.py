"""Renewing credentials: when a credential is renewed, what a poll gets, and each source the
configuration names, served on loopback by exporter/demo/sts_simulator.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_credentials.provider.refreshable import Credentials as PackageCredentials

from exporter.api.auth.credentials import (
    CredentialsError,
    Lease,
    RenewingCredentials,
    credential_provider,
    is_newer,
    refresh_time,
    retry_delay,
    safe_message,
    usable,
)
from exporter.api.transport.client import RunningJobsClient
from exporter.api.wire.pages import TimeSlice
from exporter.config import Credentials, PollSettings
from exporter.config.credential_model import CredentialSpec
from exporter.demo.simulator import ApiSimulator
from exporter.demo.sts_simulator import CredentialServer, StsIssuer
from exporter.polling.read.window_read import WindowReader
from tests.support.jobs import job_record, make_target

ROLE = "acs:ram::1000000000000000:role/maxcompute-exporter"
CALLER_ID, CALLER_SECRET = "LTAIcaller", "caller-secret-never-shown"
KEY = Credentials("STS.a", "s")


def lease(fetched: float, expires: float | None) -> Lease:
    return Lease(KEY, fetched, expires)


def test_renewal_is_due_15_minutes_before_expiry_or_half_way_for_short_lifetimes() -> None:
    assert refresh_time(lease(0, 3600), min_validity=10) == 2700
    assert refresh_time(lease(0, 600), min_validity=10) == 300
    # Never so late that a request could not be sent in time with the old credential.
    assert refresh_time(lease(0, 30), min_validity=10) == 10
    assert refresh_time(lease(0, 10), min_validity=10) == 0
    # A source that does not say when its credential expires is asked every minute.
    assert refresh_time(lease(100, None), min_validity=10) == 160


def test_a_credential_is_usable_only_while_a_request_can_still_arrive_in_time() -> None:
    assert usable(lease(0, 100), now=89.9, min_validity=10)
    assert not usable(lease(0, 100), now=90, min_validity=10)
    assert usable(lease(0, None), now=10**12, min_validity=10)


def test_only_a_later_expiry_replaces_the_current_credential() -> None:
    assert is_newer(lease(5, 200), lease(0, 100))
    assert not is_newer(lease(5, 100), lease(0, 100))
    assert is_newer(lease(5, None), lease(0, 100))
    assert is_newer(lease(5, 100), None)


def test_retries_back_off_to_30_seconds() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 6, 7, 20)] == [0.5, 1, 2, 16, 30, 30]


def test_error_texts_lose_response_bodies_whole_and_every_uri_part_past_the_host() -> None:
    error = Exception(
        "unable to load credentials from any of the providers in the chain: ["
        "'URLCredentialsProvider: error retrieving credentials from"
        " http://user:pw@127.0.0.1:80/creds/PATHTOKEN?token=LTAIhush result:"
        ' {"AccessKeySecret": "hush"}\', \'SECRET-AFTER-QUOTE\', '
        "'EcsRamRoleCredentialsProvider: IMDS credentials is disabled']"
    )
    assert safe_message(error) == (
        "unable to load credentials from any of the providers in the chain: ["
        "'URLCredentialsProvider: error retrieving credentials from"
        " http://<secret>@127.0.0.1:80/<secret>?<secret> result: (withheld)"
    )


class FakeProvider:
    """A source of the package's shape whose answers the test sets."""

    def __init__(self, *answers: PackageCredentials | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_credentials(self) -> PackageCredentials:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def package_credentials(
    key_id: str, expiration: int | None, token: str = "tok"
) -> PackageCredentials:
    return PackageCredentials(
        access_key_id=key_id,
        access_key_secret="secret",
        security_token=token,
        expiration=expiration,
    )


async def test_get_reuses_a_usable_credential_and_renews_one_near_expiry() -> None:
    now = [1000.0]
    provider = FakeProvider(package_credentials("STS.1", 1100), package_credentials("STS.2", 2000))
    source = RenewingCredentials(lambda: provider, "test", min_validity=10, clock=lambda: now[0])
    try:
        assert (await source.get()).access_key_id == "STS.1"
        now[0] = 1089.0
        assert (await source.get()).access_key_id == "STS.1"
        assert provider.calls == 1
        now[0] = 1090.0  # 10 s before expiry: a request might arrive late
        assert (await source.get()) == Credentials("STS.2", "secret", "tok")
        assert provider.calls == 2
    finally:
        await source.aclose()


async def test_a_source_that_only_has_expiring_credentials_fails_without_sending_them() -> None:
    provider = FakeProvider(package_credentials("STS.old", 1005))
    source = RenewingCredentials(lambda: provider, "test", min_validity=10, clock=lambda: 1000.0)
    with pytest.raises(CredentialsError) as caught:
        await source.get()
    assert str(caught.value) == "test returned credentials that expire within 10s"


async def test_a_failing_source_is_named_and_its_secrets_are_not() -> None:
    provider = FakeProvider(
        RuntimeError("error refreshing credentials, http_code: 500, result: LTAIhush")
    )
    source = RenewingCredentials(lambda: provider, "credentials_uri", min_validity=1)
    with pytest.raises(CredentialsError) as caught:
        await source.get()
    assert str(caught.value) == (
        "no credentials from credentials_uri: error refreshing credentials, http_code: 500,"
        " result: (withheld)"
    )


async def test_non_ascii_credentials_from_a_source_fail_the_poll_not_the_process() -> None:
    provider = FakeProvider(package_credentials("STS.\u00e9", None))
    source = RenewingCredentials(lambda: provider, "profile", min_validity=1)
    with pytest.raises(CredentialsError) as caught:
        await source.get()
    assert str(caught.value) == (
        "no credentials from profile: the source returned non-ASCII characters in a credential"
    )


async def test_concurrent_pages_share_one_renewal() -> None:
    provider = FakeProvider(package_credentials("STS.1", None))
    source = RenewingCredentials(lambda: provider, "test", min_validity=1)
    try:
        got = await asyncio.gather(*(source.get() for _ in range(8)))
        assert {c.access_key_id for c in got} == {"STS.1"}
        assert provider.calls == 1
    finally:
        await source.aclose()


def test_static_keys_are_used_as_they_are() -> None:
    assert asyncio.run(credential_provider(KEY, min_validity=1).get()) is KEY


# --- Each configured source, faked at its boundary on loopback ---------------------------------


@pytest.fixture
def simulator() -> Iterator[ApiSimulator]:
    sim = ApiSimulator([job_record("job-1"), job_record("job-2")]).start()
    yield sim
    sim.stop()


@pytest.fixture
def server(simulator: ApiSimulator) -> Iterator[CredentialServer]:
    issuer = StsIssuer(simulator.state, lifetime=3600)
    running = CredentialServer(issuer, callers={CALLER_ID: CALLER_SECRET}).start()
    yield running
    running.stop()


async def poll_with(simulator: ApiSimulator, spec: CredentialSpec) -> int:
    """Read the simulator's jobs with ``spec``'s credentials; the number of jobs seen."""
    settings = PollSettings(timeout=5.0, retries=0, rate_limit=1000.0)
    client = RunningJobsClient(make_target(simulator.url, credentials=spec), settings)
    window = TimeSlice(0, 2_000_000_000)
    reader = WindowReader(client.fetch_page_with_retries, concurrency=4, request_cap=1000)
    try:
        read = await reader.read(window, [window])
    finally:
        await client.aclose()
    return len(list(read.jobs()))


def issued_keys(server: CredentialServer) -> list[str]:
    return [credential.access_key_id for credential in server.issuer.issued]


async def test_credentials_uri(simulator: ApiSimulator, server: CredentialServer) -> None:
    spec = CredentialSpec("credentials_uri", (("uri", f"{server.url}/credentials?role=x"),))
    assert await poll_with(simulator, spec) == 2
    assert server.requests == [("GET", "/credentials?role=x")]


async def test_ram_role_arn_assumes_the_role_with_a_signed_request(
    simulator: ApiSimulator, server: CredentialServer
) -> None:
    spec = CredentialSpec(
        "ram_role_arn",
        (
            ("access_key_id", CALLER_ID),
            ("access_key_secret", CALLER_SECRET),
            ("role_arn", ROLE),
            ("sts_endpoint", server.url),
        ),
    )
    assert await poll_with(simulator, spec) == 2
    ((method, path),) = server.requests
    assert method == "GET" and "Action=AssumeRole&" in path
    assert "RoleSessionName=maxcompute-exporter" in path
    assert len(issued_keys(server)) == 1


async def test_ram_role_arn_with_a_wrong_secret_fails_naming_the_role(
    simulator: ApiSimulator, server: CredentialServer
) -> None:
    spec = CredentialSpec(
        "ram_role_arn",
        (
            ("access_key_id", CALLER_ID),
            ("access_key_secret", "wrong-secret-LTAIhush"),
            ("role_arn", ROLE),
            ("sts_endpoint", server.url),
        ),
    )
    source = credential_provider(spec, min_validity=1)
    with pytest.raises(CredentialsError) as caught:
        await source.get()
    assert str(caught.value) == (
        f"no credentials from ram_role_arn {ROLE}: error refreshing credentials from"
        " ram_role_arn, http_code: 400, result: (withheld)"
    )


async def test_oidc_role_arn_sends_the_token_file(
    simulator: ApiSimulator,
    server: CredentialServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text("eyJ.oidc-token.sig")
    server.oidc_token = "eyJ.oidc-token.sig"
    spec = CredentialSpec(
        "oidc_role_arn",
        (
            ("oidc_provider_arn", "acs:ram::1000000000000000:oidc-provider/ack-rrsa-c0123"),
            ("oidc_token_file", str(token_file)),
            ("role_arn", ROLE),
            ("sts_endpoint", server.url),
        ),
    )
    assert await poll_with(simulator, spec) == 2
    ((_, path),) = server.requests
    assert "Action=AssumeRoleWithOIDC&" in path and "OIDCToken=eyJ.oidc-token.sig" in path
    # Not even at debug level does the token, or the credential it bought, reach a log line.
    (issued,) = server.issuer.issued
    for secret in ("eyJ.oidc-token.sig", issued.access_key_secret, issued.security_token):
        assert secret not in caplog.text


async def test_profile_of_the_aliyun_cli(simulator: ApiSimulator, tmp_path: Path) -> None:
    simulator.state.credentials["LTAIprofile"] = ("profile-secret", None)
    profile_file = tmp_path / "config.json"
    profiles = [
        {"name": "other", "mode": "AK", "access_key_id": "LTAIx", "access_key_secret": "x"},
        {
            "name": "prod",
            "mode": "AK",
            "access_key_id": "LTAIprofile",
            "access_key_secret": "profile-secret",
        },
    ]
    profile_file.write_text(json.dumps({"current": "other", "profiles": profiles}))
    spec = CredentialSpec("profile", (("file", str(profile_file)), ("name", "prod")))
    assert await poll_with(simulator, spec) == 2
