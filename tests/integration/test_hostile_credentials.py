"""A hostile credentials URI: it trickles, it answers 200 MiB, it hides a secret in an error
body. Each fails the poll with ``reason="credentials"`` within a bounded time and memory, says
why without a byte of the answer, and never holds up exit or the name lookups of other targets.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_credentials.utils import auth_util

from exporter.api.auth import credentials_uri
from exporter.api.auth.credentials import CredentialsError, RenewingCredentials, build_provider
from exporter.api.auth.fetch_threads import FetchThreads
from exporter.config.credential_model import CredentialSpec
from tests.support.exporter_process import ExporterProcess, run_exporter
from tests.support.hostile_api import HostileApi
from tests.support.tools import free_port
from tests.support.waiting import eventually

MIB = 1024 * 1024
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"


@pytest.fixture
def uri() -> Iterator[HostileApi]:
    server = HostileApi()
    yield server
    server.close()


def trickle(server: HostileApi, seconds: float) -> None:
    """Headers at once, then a byte every 0.2 s for ``seconds``."""
    count = int(seconds / 0.2)
    server.answer = lambda q: iter([HEAD % (count + 1), *([b" "] * count)])
    server.gap = 0.2


def source(server: HostileApi, fetch_limit: float = 20.0) -> RenewingCredentials:
    spec = CredentialSpec("credentials_uri", (("uri", f"{server.url}/creds"),))
    return RenewingCredentials(
        lambda: build_provider(spec), spec.description, min_validity=1.0, fetch_limit=fetch_limit
    )


async def failure_of(credentials: RenewingCredentials) -> str:
    with pytest.raises(CredentialsError) as caught:
        await credentials.get()
    await credentials.aclose()
    return str(caught.value)


def test_trickling_fetches_give_up_on_time_and_leave_the_loops_executor_free(
    uri: HostileApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    trickle(uri, 4.0)
    monkeypatch.setattr(credentials_uri, "ANSWER_LIMIT_SECONDS", 3.0)
    monkeypatch.setattr("exporter.api.auth.credentials.FETCH_THREADS", FetchThreads(8))

    async def run() -> tuple[list[str], str]:
        # Eight abandoned fetches: more than the loop's default executor has threads here.
        errors = [await failure_of(source(uri, fetch_limit=0.3)) for _ in range(8)]
        ninth = await failure_of(source(uri, fetch_limit=0.3))
        async with asyncio.timeout(2):  # a name lookup runs on the default executor
            await asyncio.get_running_loop().getaddrinfo("localhost", 80)
        return errors, ninth

    errors, ninth = asyncio.run(run())
    assert set(errors) == {"no credentials from credentials_uri: no answer within 0.3s"}
    assert ninth == (
        "no credentials from credentials_uri: all 8 credential fetch threads are held by "
        "fetches still running"
    )


def test_a_trickled_answer_is_cut_at_the_answer_limit(
    uri: HostileApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    trickle(uri, 6.0)
    monkeypatch.setattr(credentials_uri, "ANSWER_LIMIT_SECONDS", 1.0)
    started = time.monotonic()
    error = asyncio.run(failure_of(source(uri)))
    assert error == "no credentials from credentials_uri: no whole answer within 1s"
    assert time.monotonic() - started < 3.0


def test_a_200_mib_answer_is_refused_at_64_kib(uri: HostileApi) -> None:
    block = bytes(MIB)
    uri.answer = lambda q: iter([HEAD % (200 * MIB), *([block] * 200)])
    tracemalloc.start()
    try:
        error = asyncio.run(failure_of(source(uri)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error == (
        "no credentials from credentials_uri: the credentials URI's answer is larger than 64 KiB"
    )
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_the_default_chains_uri_source_is_bounded_too(
    uri: HostileApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = bytes(MIB)
    uri.answer = lambda q: iter([HEAD % (200 * MIB), *([block] * 200)])
    # The package reads ALIBABA_CLOUD_CREDENTIALS_URI once, when it is imported.
    monkeypatch.setattr(auth_util, "environment_credentials_uri", f"{uri.url}/creds")
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent")
    spec = CredentialSpec()
    chain = RenewingCredentials(lambda: build_provider(spec), spec.description, min_validity=1.0)
    tracemalloc.start()
    try:
        error = asyncio.run(failure_of(chain))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "BoundedUriProvider: the credentials URI's answer is larger than 64 KiB" in error
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_an_error_body_is_withheld_whole(uri: HostileApi) -> None:
    body = b'{"Code": "x\', \'then", "AccessKeySecret": "SECRET-AFTER-QUOTE"}'
    uri.answer = lambda q: (
        b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    )
    error = asyncio.run(failure_of(source(uri)))
    assert error == (
        "no credentials from credentials_uri: the credentials URI answered HTTP 500 (body withheld)"
    )


def test_an_unreachable_uri_is_named_by_its_host_and_the_cause() -> None:
    address = f"127.0.0.1:{free_port()}"
    spec = CredentialSpec("credentials_uri", (("uri", f"http://u:PW@{address}/TOKEN?q=S"),))
    credentials = RenewingCredentials(
        lambda: build_provider(spec), spec.description, min_validity=1.0
    )
    assert asyncio.run(failure_of(credentials)) == (
        "no credentials from credentials_uri: the credentials URI could not be read: "
        f"{address}: connection refused: nothing listens on that port"
    )


def config_with_uri(tmp_path: Path, api_url: str, uri: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n  - region: cn-hangzhou\n"
        f"    endpoint: {api_url}\n"
        f"    credentials: {{type: credentials_uri, uri: '{uri}'}}\n"
        "poll: {interval: 3s, timeout: 1s}\n"
    )
    return path


def test_sigterm_and_once_never_wait_for_a_trickling_credentials_uri(
    uri: HostileApi, tmp_path: Path
) -> None:
    trickle(uri, 60.0)
    config = config_with_uri(tmp_path, "http://127.0.0.1:9", f"{uri.url}/creds")
    process = ExporterProcess("--config", str(config))
    try:
        process.wait_until("/healthz")
        eventually("the first fetch to be trickling", lambda: uri.requests >= 1)
        started = time.monotonic()
        code, stderr = process.stop(timeout=20)
        assert code == 0, stderr
        assert time.monotonic() - started < 5.0
    finally:
        process.stop()
    started = time.monotonic()
    result = run_exporter("--config", str(config), "--once", timeout=30)
    assert result.returncode == 1  # the poll failed (its deadline, 2.7s), and --once returned
    assert time.monotonic() - started < 15.0
    assert 'maxcompute_exporter_poll_errors_total{reason="deadline"' in result.stdout
