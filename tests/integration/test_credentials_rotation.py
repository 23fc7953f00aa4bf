"""Rotation: STS credentials that expire every few seconds, renewed in the background.

Against the simulator, which refuses a request signed with an expired token, polls run back to
back across ten rotations: none fails, no request carries an expired token, and every number on
/metrics stays exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest

from exporter.config import PollSettings
from exporter.config.credential_model import CredentialSpec
from exporter.demo.simulator import ApiSimulator
from exporter.demo.sts_simulator import CredentialServer, StsIssuer
from tests.support.stack import JOBS, TRUTH, Stack

# Renewed half-way, and unusable poll.timeout (1 s) before expiry: the background renewal has
# 2 s to finish before a poll would wait for it, enough on a loaded machine (4 s left 1 s).
LIFETIME_SECONDS = 6
ROTATIONS = 10
SETTINGS = PollSettings(
    interval=10.0,
    window=3600.0,
    page_concurrency=2,
    timeout=1.0,
    retries=2,
    retry_backoff=0.01,
    rate_limit=1000.0,
    deadline=5.0,
    max_staleness=30.0,
)


@pytest.fixture
def simulator() -> Iterator[ApiSimulator]:
    sim = ApiSimulator(JOBS, credentials={}).start()
    yield sim
    sim.stop()


@pytest.fixture
def server(simulator: ApiSimulator) -> Iterator[CredentialServer]:
    running = CredentialServer(StsIssuer(simulator.state, LIFETIME_SECONDS)).start()
    yield running
    running.stop()


async def test_ten_rotations_fail_no_poll_and_send_no_expired_token(
    simulator: ApiSimulator, server: CredentialServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uri = f"{server.url}/credentials"
    stack = Stack(simulator, SETTINGS, CredentialSpec("credentials_uri", (("uri", uri),)))
    issued = server.issuer.issued
    results: list[bool] = []
    give_up = time.monotonic() + 30 * LIFETIME_SECONDS
    try:
        while len(issued) <= ROTATIONS and time.monotonic() < give_up:
            results.append(await stack.poller.poll())
            await asyncio.sleep(0.1)
    finally:
        await stack.poller.aclose()
    assert len(issued) > ROTATIONS, "the credentials were not renewed ten times"
    assert results and all(results), f"{results.count(False)} of {len(results)} polls failed"
    assert simulator.state.expired_token_requests == 0
    scraped = stack.scrape()
    assert {k: v for k, v in scraped.items() if k in TRUTH} == TRUTH
    codes = {
        k[1]: v for k, v in scraped.items() if k[0] == "maxcompute_exporter_api_requests_total"
    }
    # Every request was answered 200, but for any the in-process simulator answered later than
    # poll.timeout on a loaded machine (retried, counted as a timeout): none was refused.
    assert set(codes) <= {"200", "timeout"}, codes
    late = codes.get("timeout", 0)
    assert codes["200"] <= simulator.state.requests <= codes["200"] + late
    assert not [k for k, v in scraped.items() if k[0].endswith("poll_errors_total") and v]
    # Renewed in the background: no poll had to wait for a renewal.
    assert "waited for a credential renewal" not in caplog.text
    for credential in issued:
        assert credential.access_key_secret not in caplog.text
        assert credential.security_token not in caplog.text


async def test_a_failed_renewal_is_retried_in_the_background_and_fails_no_poll(
    simulator: ApiSimulator, server: CredentialServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    uri = f"{server.url}/credentials"
    stack = Stack(simulator, SETTINGS, CredentialSpec("credentials_uri", (("uri", uri),)))
    issued = server.issuer.issued
    results: list[bool] = []
    give_up = time.monotonic() + 10 * LIFETIME_SECONDS
    try:
        results.append(await stack.poller.poll())
        # The next renewal meets a failing service once, then it recovers.
        server.failing, seen = True, len(server.requests)
        while len(issued) < 2 and time.monotonic() < give_up:
            if server.failing and len(server.requests) > seen:
                server.failing = False
            results.append(await stack.poller.poll())
            await asyncio.sleep(0.1)
    finally:
        await stack.poller.aclose()
    assert len(issued) == 2, "the renewal was not retried"
    assert all(results), f"{results.count(False)} of {len(results)} polls failed"
    assert simulator.state.expired_token_requests == 0
    failed = [r for r in caplog.records if r.getMessage() == "credential renewal failed; retrying"]
    assert len(failed) == 1
    assert failed[0].error == (
        "no credentials from credentials_uri: the credentials URI answered HTTP 500 (body withheld)"
    )
    assert server.failure_marker not in caplog.text
