"""The default chain, one source at a time, in the exporter as users run it (``--once``).

Each source's inputs are faked at its boundary and on loopback only: environment variables,
profile files in a temporary HOME, a credentials-URI server, and the ECS metadata service
(reached through an HTTP proxy on loopback: 100.100.100.200 itself is never contacted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.demo.simulator import ApiSimulator
from exporter.demo.sts_simulator import CredentialServer, StsIssuer
from tests.support.exporter_process import ExporterProcess
from tests.support.exposition import samples
from tests.support.jobs import job_record
from tests.support.tools import ROOT

KEY_ID, SECRET = "LTAIchain", "chain-secret-never-shown"
ECS_HOST = "http://100.100.100.200"


@pytest.fixture(scope="module")
def simulator() -> Iterator[ApiSimulator]:
    now = int(time.time())
    jobs = [job_record(f"job-{n}", submitted=now - 600, running=now - 300) for n in (1, 2)]
    sim = ApiSimulator(jobs, credentials={KEY_ID: (SECRET, None)}).start()
    yield sim
    sim.stop()


@pytest.fixture
def server(simulator: ApiSimulator) -> Iterator[CredentialServer]:
    running = CredentialServer(StsIssuer(simulator.state, lifetime=3600)).start()
    yield running
    running.stop()


def run_once(
    simulator: ApiSimulator, home: Path, env: dict[str, str], credentials: str = ""
) -> subprocess.CompletedProcess:
    """The exporter's ``--once`` with only ``env`` of the credential variables, HOME at ``home``."""
    config = home / "exporter.yaml"
    block = f"\n    credentials: {credentials}" if credentials else ""
    config.write_text(f"targets:\n  - region: cn-hangzhou\n    endpoint: {simulator.url}{block}\n")
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ALIBABA_CLOUD_")
        and name.lower() not in ("http_proxy", "https_proxy", "no_proxy")
    }
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--config", str(config), "--once", "--log.level=debug"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**inherited, "HOME": str(home), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", **env},
    )


def published(result: subprocess.CompletedProcess) -> dict[tuple, float]:
    """Running jobs and failed polls from the exposition ``--once`` printed."""
    out = {}
    for sample in samples(result.stdout):
        if sample.name == "maxcompute_running_jobs":
            out[(sample.name,)] = sample.value
        elif sample.name == "maxcompute_exporter_poll_errors_total" and sample.value:
            out[(sample.name, sample.labels["reason"])] = sample.value
    return out


def assert_polled_with_secrets_hidden(result: subprocess.CompletedProcess, *secrets: str) -> None:
    assert result.returncode == 0, result.stderr
    assert published(result) == {("maxcompute_running_jobs",): 2}
    for secret in (SECRET, *secrets):
        assert secret not in result.stdout
        assert secret not in result.stderr


def write_cli_profile(home: Path, key_id: str, secret: str) -> None:
    (home / ".aliyun").mkdir()
    (home / ".aliyun" / "config.json").write_text(
        '{"current": "default", "profiles": [{"name": "default", "mode": "AK",'
        f' "access_key_id": "{key_id}", "access_key_secret": "{secret}"}}]}}'
    )


def write_credentials_file(path: Path, key_id: str, secret: str) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        f"[default]\ntype = access_key\naccess_key_id = {key_id}\naccess_key_secret = {secret}\n"
    )


def test_environment(simulator: ApiSimulator, tmp_path: Path) -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
    assert_polled_with_secrets_hidden(run_once(simulator, tmp_path, env))


def test_aliyun_cli_profile_in_home(simulator: ApiSimulator, tmp_path: Path) -> None:
    write_cli_profile(tmp_path, KEY_ID, SECRET)
    assert_polled_with_secrets_hidden(run_once(simulator, tmp_path, {}))


def test_credentials_file_in_home_and_by_variable(simulator: ApiSimulator, tmp_path: Path) -> None:
    write_credentials_file(tmp_path / ".alibabacloud" / "credentials.ini", KEY_ID, SECRET)
    assert_polled_with_secrets_hidden(run_once(simulator, tmp_path, {}))
    elsewhere = tmp_path / "elsewhere" / "credentials"
    write_credentials_file(elsewhere, KEY_ID, SECRET)
    (tmp_path / ".alibabacloud" / "credentials.ini").unlink()
    env = {"ALIBABA_CLOUD_CREDENTIALS_FILE": str(elsewhere)}
    assert_polled_with_secrets_hidden(run_once(simulator, tmp_path, env))


def test_credentials_uri(simulator: ApiSimulator, server: CredentialServer, tmp_path: Path) -> None:
    env = {"ALIBABA_CLOUD_CREDENTIALS_URI": f"{server.url}/credentials"}
    result = run_once(simulator, tmp_path, env)
    (issued,) = server.issuer.issued
    assert_polled_with_secrets_hidden(result, issued.access_key_secret, issued.security_token)


@pytest.mark.parametrize(
    "credentials", ["", "{type: ecs_ram_role, role_name: maxcompute-exporter}"]
)
def test_ecs_instance_ram_role(
    simulator: ApiSimulator, server: CredentialServer, tmp_path: Path, credentials: str
) -> None:
    # The metadata service answers through a loopback proxy; the token mode is used first.
    env = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "false", "HTTP_PROXY": server.url}
    result = run_once(simulator, tmp_path, env, credentials)
    (issued,) = server.issuer.issued
    assert_polled_with_secrets_hidden(result, issued.access_key_secret, issued.security_token)
    assert ("PUT", f"{ECS_HOST}/latest/api/token") in server.requests
    role = f"{ECS_HOST}/latest/meta-data/ram/security-credentials/maxcompute-exporter"
    assert ("GET", role) in server.requests


def test_the_first_source_in_the_chain_wins(
    simulator: ApiSimulator, server: CredentialServer, tmp_path: Path
) -> None:
    # The CLI profile comes before the credentials file and the URI: neither is used.
    write_cli_profile(tmp_path, KEY_ID, SECRET)
    write_credentials_file(tmp_path / ".alibabacloud" / "credentials.ini", "LTAIwrong", "x")
    env = {"ALIBABA_CLOUD_CREDENTIALS_URI": f"{server.url}/credentials"}
    assert_polled_with_secrets_hidden(run_once(simulator, tmp_path, env))
    assert server.requests == []


def test_no_source_fails_the_poll_with_reason_credentials(
    simulator: ApiSimulator, server: CredentialServer, tmp_path: Path
) -> None:
    server.failing = True  # answers 500 with a body that must not reach the log
    env = {"ALIBABA_CLOUD_CREDENTIALS_URI": f"{server.url}/credentials?token=LTAIhush"}
    result = run_once(simulator, tmp_path, env)
    assert result.returncode == 1
    assert published(result) == {("maxcompute_exporter_poll_errors_total", "credentials"): 1}
    assert "no credentials from the default credential chain" in result.stderr
    assert (
        "BoundedUriProvider: the credentials URI answered HTTP 500 (body withheld)" in result.stderr
    )
    assert server.failure_marker not in result.stderr
    assert "LTAIhush" not in result.stderr


def test_served_with_only_a_credentials_uri_rotating_tokens(tmp_path: Path) -> None:
    """No key anywhere but ALIBABA_CLOUD_CREDENTIALS_URI: exact values while tokens rotate."""
    now = int(time.time())
    jobs = [
        job_record(f"job-{n:02d}", cu=0.125, memory=0.0625, progress=0.5, submitted=now - 60)
        for n in range(25)
    ]
    sim = ApiSimulator(jobs, credentials={}).start()  # only the issued STS keys are valid
    server = CredentialServer(StsIssuer(sim.state, lifetime=4)).start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {sim.url}\n"
        "poll:\n  interval: 1s\n  timeout: 500ms\n  window: 1h\n"
    )
    cleared = {name: "" for name in os.environ if name.startswith("ALIBABA_CLOUD_")}
    env = {
        **cleared,
        "HOME": str(tmp_path),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "ALIBABA_CLOUD_CREDENTIALS_URI": f"{server.url}/credentials",
    }
    exporter = ExporterProcess("--config", str(config), "--log.level=debug", env=env)
    try:
        exporter.wait_until("/ready")
        deadline = time.monotonic() + 60
        while len(server.issuer.issued) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        text = exporter.get("/metrics").text
    finally:
        code, stderr = exporter.stop()
        server.stop()
        sim.stop()
    assert code == 0
    assert len(server.issuer.issued) >= 3, "the token was not renewed"
    values = {
        (s.name, s.labels.get("code", s.labels.get("reason", ""))): s.value
        for s in samples(text)
        if s.name.startswith(("maxcompute_running_jobs", "maxcompute_up", "maxcompute_exporter_"))
    }
    assert values[("maxcompute_up", "")] == 1
    assert values[("maxcompute_running_jobs", "")] == 25
    assert values[("maxcompute_running_jobs_cu_ratio", "")] == 3.125
    assert values[("maxcompute_running_jobs_memory_ratio", "")] == 1.5625
    assert values[("maxcompute_running_jobs_progress_sum_ratio", "")] == 12.5
    requests = {
        k[1]: v for k, v in values.items() if k[0] == "maxcompute_exporter_api_requests_total"
    }
    assert set(requests) == {"200"} and requests["200"] >= 2
    errors = {k[1]: v for k, v in values.items() if k[0].endswith("poll_errors_total")}
    assert set(errors.values()) == {0}
    assert sim.state.expired_token_requests == 0
    for issued in server.issuer.issued:
        for secret in (issued.access_key_secret, issued.security_token):
            assert secret not in text
            assert secret not in stderr


def test_rrsa_variables_make_the_chain_assume_the_role_before_the_cli_profile(
    simulator: ApiSimulator, server: CredentialServer, tmp_path: Path
) -> None:
    # The chain's OIDC step calls https://sts.aliyuncs.com, whose TLS cannot be played here:
    # through the loopback proxy its tunnel is refused, so the chain goes on to the CLI profile.
    token = tmp_path / "rrsa-token"
    token.write_text("eyJ.rrsa-token.sig")
    write_cli_profile(tmp_path, KEY_ID, SECRET)
    env = {
        "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1000000000000000:role/maxcompute-exporter",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1000000000000000:oidc-provider/ack-rrsa",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token),
        "HTTPS_PROXY": server.url,
    }
    assert_polled_with_secrets_hidden(run_once(simulator, tmp_path, env), "eyJ.rrsa-token.sig")
    assert server.requests == [("CONNECT", "sts.aliyuncs.com:443")]
