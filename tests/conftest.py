"""Fixtures for every test; the shared helpers themselves live in ``tests/support``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# The ECS metadata address (100.100.100.200) is not on this machine and must never be
# contacted: the credential chain skips it, in this process and in the exporters it starts.
# The tests of the ECS source fake it on loopback and say so in their own environment.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import pytest

from exporter.config import PollSettings
from tests.support import respx_transport  # noqa: F401  registers respx.mock(using="aiohttp")


@pytest.fixture
def settings() -> PollSettings:
    """No retries and no rate limit: each test that needs them says so."""
    return PollSettings(
        interval=60.0,
        window=86400.0,
        page_concurrency=4,
        timeout=5.0,
        retries=0,
        rate_limit=10_000.0,
    )


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# Modules that take the longest on one worker, longest first. Under `-n <N> --dist loadscope`
# each module goes whole to one worker in collection order; started last, these made the run's
# tail (one worker busy for minutes while the other idled). Started first, the short modules
# fill in beside them. The order changes nothing else: every test still runs.
LONG_MODULES = (
    "tests/integration/test_busy_tenant.py",
    "tests/deploy/test_deploy_live_alerting.py",
    "tests/integration/test_load.py",
    "tests/integration/test_hostile_clients.py",
    "tests/integration/test_fleet.py",
    "tests/deploy/test_deploy_live_prometheus.py",
    "tests/integration/test_credentials_rotation.py",
    "tests/integration/test_consumption.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        return LONG_MODULES.index(module) if module in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable: each module's own order is kept
