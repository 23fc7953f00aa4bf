"""Basic auth: verdicts cached, bcrypt bounded, no user enumeration, no crash on long passwords."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import httpx
import pytest

from exporter.web.basicauth import BasicAuth
from exporter.web.webconfig import WebConfig
from tests.support.exporter_process import run_exporter
from tests.support.web_server import StaticExposition, running_server

HASH = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=5))


def header(user: str, password: str | bytes) -> str:
    raw = password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(user.encode() + b":" + raw).decode()


class CountingBcrypt:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hashes: list[bytes] = []
        real = bcrypt.checkpw

        def checkpw(password: bytes, hashed: bytes) -> bool:
            self.hashes.append(hashed)
            return real(password, hashed)

        monkeypatch.setattr(bcrypt, "checkpw", checkpw)


def test_good_and_bad_verdicts_are_cached_so_bcrypt_runs_once_each(monkeypatch) -> None:
    counted = CountingBcrypt(monkeypatch)
    auth = BasicAuth({"prometheus": HASH})
    assert auth.cached(header("prometheus", "right")) is None
    for _ in range(3):
        assert auth.check(header("prometheus", "right"))
        assert not auth.check(header("prometheus", "wrong"))
    assert counted.hashes == [HASH, HASH]
    assert auth.cached(header("prometheus", "right")) is True
    assert auth.cached(header("prometheus", "wrong")) is False


def test_an_unknown_user_is_checked_against_a_dummy_hash_of_the_same_cost(monkeypatch) -> None:
    counted = CountingBcrypt(monkeypatch)
    auth = BasicAuth({"prometheus": HASH})
    assert not auth.check(header("nobody", "right"))
    (dummy,) = counted.hashes
    assert dummy != HASH and dummy[:7] == b"$2b$05$"


def test_a_password_over_72_bytes_is_wrong_not_an_error() -> None:
    auth = BasicAuth({"prometheus": HASH})
    assert not auth.check(header("prometheus", "x" * 73))
    assert not auth.check(header("prometheus", b"\xff" * 100))


@pytest.mark.parametrize(
    "value", ["Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"no-colon").decode(), None]
)
def test_malformed_headers_are_refused_without_bcrypt(value: str | None) -> None:
    assert BasicAuth({"prometheus": HASH}).cached(value) is False


def test_over_72_bytes_over_http_is_401_and_the_server_stays_up() -> None:
    users = {"prometheus": HASH}
    with running_server(StaticExposition(), web_config=WebConfig(users=users)) as base:
        refused = httpx.get(f"{base}/metrics", auth=("prometheus", "p" * 100), timeout=5)
        assert refused.status_code == 401
        assert refused.headers["connection"] == "close"
        assert refused.headers["www-authenticate"] == 'Basic realm="maxcompute-exporter"'
        assert httpx.get(f"{base}/metrics", auth=("prometheus", "right")).status_code == 200


@pytest.mark.parametrize("hashed", ["$2y$10$short", "$2y$99$" + "a" * 53, "$2x$10$" + "a" * 53])
def test_an_invalid_bcrypt_hash_is_refused_at_load(hashed: str, tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    result = run_exporter("--demo", "--web.config.file", str(path), "--check-config")
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: web config error: basic_auth_users.prometheus: expected a bcrypt"
        " hash like htpasswd -nbB makes ($2y$10$ and 53 more characters)\n"
    )
