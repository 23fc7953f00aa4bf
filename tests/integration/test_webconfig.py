"""--web.config.file: TLS and basic auth as in the Prometheus exporter-toolkit."""

from __future__ import annotations

import base64
import ssl
import time
from pathlib import Path

import bcrypt
import httpx
import pytest

from exporter.config import ConfigError
from exporter.web.basicauth import BasicAuth
from exporter.web.webconfig import load_web_config
from tests.support.exporter_process import ExporterProcess, run_exporter

PASSWORD = "scrape-password"


@pytest.fixture(scope="module")
def web_config(certificate, tmp_path_factory) -> Path:
    cert, key = certificate
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path_factory.mktemp("web") / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    return path


def test_tls_and_basic_auth_end_to_end(web_config: Path, certificate) -> None:
    cert, _ = certificate
    process = ExporterProcess("--demo", "--web.config.file", str(web_config))
    base = process.base.replace("http://", "https://")
    context = ssl.create_default_context(cafile=str(cert))
    try:
        for _ in range(200):
            try:
                response = httpx.get(
                    f"{base}/healthz", verify=context, auth=("prometheus", PASSWORD), timeout=5
                )
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response.status_code == 200
        # Liveness probes carry no credentials: /healthz answers without them.
        assert httpx.get(f"{base}/healthz", verify=context).status_code == 200
        # So do readiness probes: /ready says nothing secret either.
        deadline = time.monotonic() + 20
        while httpx.get(f"{base}/ready", verify=context).status_code != 200:
            assert time.monotonic() < deadline, "/ready never answered 200 without credentials"
            time.sleep(0.05)
        denied = httpx.get(f"{base}/metrics", verify=context, timeout=5)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == 'Basic realm="maxcompute-exporter"'
        wrong = httpx.get(f"{base}/metrics", verify=context, auth=("prometheus", "nope"))
        assert wrong.status_code == 401
        metrics = httpx.get(f"{base}/metrics", verify=context, auth=("prometheus", PASSWORD))
        assert metrics.status_code == 200
        assert "maxcompute_exporter_build_info" in metrics.text
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{process.base}/metrics", timeout=2)  # plain HTTP is refused
    finally:
        code, _ = process.stop()
    assert code == 0


def test_basic_auth_remembers_a_good_password_but_not_a_bad_one() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"u": hashed})
    good = "Basic " + base64.b64encode(b"u:pw").decode()
    bad = "Basic " + base64.b64encode(b"u:px").decode()
    assert auth.check(good) and auth.check(good)
    assert not auth.check(bad)
    assert not auth.check("Basic !!!")
    assert not auth.check(None)
    assert not auth.check("Basic " + base64.b64encode(b"other:pw").decode())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls: {}", "tls: unknown key (known keys: basic_auth_users, tls_server_config)"),
        (
            "tls_server_config: {cert_file: /nonexistent.crt, key_file: /x.key}",
            "tls_server_config.cert_file: expected a readable file, got '/nonexistent.crt'",
        ),
        (
            "basic_auth_users: {prometheus: plaintext}",
            "basic_auth_users.prometheus: expected a bcrypt hash like htpasswd -nbB makes"
            " ($2y$10$ and 53 more characters)",
        ),
        (
            "tls_server_config: {cert_file: CERT, key_file: KEY, client_auth_type: Sometimes}",
            "tls_server_config.client_auth_type: expected one of NoClientCert,"
            " RequireAndVerifyClientCert, VerifyClientCertIfGiven, got 'Sometimes'",
        ),
        (
            "tls_server_config: {cert_file: CERT, key_file: KEY, min_version: TLS10}",
            "tls_server_config.min_version: expected TLS12 or TLS13, got 'TLS10'",
        ),
    ],
)
def test_web_config_mistakes_are_one_line(text: str, message: str, certificate, tmp_path) -> None:
    cert, key = certificate
    path = tmp_path / "web.yml"
    path.write_text(text.replace("CERT", str(cert)).replace("KEY", str(key)))
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    assert str(caught.value) == message


def test_a_bad_web_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users: {prometheus: plaintext}\n")
    result = run_exporter("--demo", "--web.config.file", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "maxcompute-exporter: web config error: basic_auth_users.prometheus: expected a bcrypt"
        " hash like htpasswd -nbB makes ($2y$10$ and 53 more characters)"
    )
