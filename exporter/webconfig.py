"""``--web.config.file``: TLS and basic auth, in the Prometheus exporter-toolkit's format.

tls_server_config:
  cert_file: /etc/maxcompute-exporter/tls.crt
  key_file: /etc/maxcompute-exporter/tls.key
  client_ca_file: /etc/maxcompute-exporter/ca.crt   # optional
  client_auth_type: RequireAndVerifyClientCert      # optional; default NoClientCert
  min_version: TLS12                                 # optional: TLS12 or TLS13
basic_auth_users:
  prometheus: $2y$10$...                             # bcrypt hashes, as htpasswd -B makes
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import bcrypt
import yaml

from exporter.config import ConfigError, check_keys

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True, slots=True)
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: MappingProxyType[str, bytes] = field(default_factory=lambda: MappingProxyType({}))


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes.

    bcrypt costs tens of milliseconds by design; a credential that passed once is remembered
    (as a keyed digest, not in clear) so that scrapes stay cheap, as exporter-toolkit does.
    """

    def __init__(self, users: MappingProxyType[str, bytes]) -> None:
        self._users = users
        self._key = hashlib.sha256(repr(sorted(users.items())).encode()).digest()
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check(self, header: str | None) -> bool:
        if not self._users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self._users.get(user)
        if hashed is None:
            return False
        digest = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if digest in self._verified:
                return True
        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self._lock:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified.add(digest)
        return True


def _readable(key: str, value: object, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "a file path", value)
    path = base / value
    if not path.is_file():
        raise ConfigError(key, "a readable file", value)
    return str(path)


def load_web_config(path: str) -> WebConfig:
    """Read and check the file; raises ``ConfigError`` naming the key on any mistake."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError("--web.config.file", "a readable file", path) from error
    except yaml.YAMLError as error:
        raise ConfigError(path, "valid YAML") from error
    block = check_keys("", data or {}, {"tls_server_config", "basic_auth_users"})
    context = None
    if block.get("tls_server_config") is not None:
        tls = check_keys(
            "tls_server_config",
            block["tls_server_config"],
            {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"},
        )
        # Relative paths are relative to the web config file, as in exporter-toolkit.
        base = file.parent
        cert = _readable("tls_server_config.cert_file", tls.get("cert_file"), base)
        key = _readable("tls_server_config.key_file", tls.get("key_file"), base)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as error:
            raise ConfigError(
                "tls_server_config.cert_file", "a PEM certificate matching key_file"
            ) from error
        auth_type = tls.get("client_auth_type", "NoClientCert")
        if auth_type not in CLIENT_AUTH_TYPES:
            raise ConfigError(
                "tls_server_config.client_auth_type",
                "one of " + ", ".join(CLIENT_AUTH_TYPES),
                auth_type,
            )
        context.verify_mode = CLIENT_AUTH_TYPES[auth_type]
        if tls.get("client_ca_file") is not None:
            context.load_verify_locations(
                _readable("tls_server_config.client_ca_file", tls["client_ca_file"], base)
            )
        elif context.verify_mode != ssl.CERT_NONE:
            raise ConfigError("tls_server_config.client_ca_file", f"a file with {auth_type}")
        if "min_version" in tls:
            if tls["min_version"] not in TLS_VERSIONS:
                raise ConfigError(
                    "tls_server_config.min_version", "TLS12 or TLS13", tls["min_version"]
                )
            context.minimum_version = TLS_VERSIONS[tls["min_version"]]
    users: dict[str, bytes] = {}
    raw_users = block.get("basic_auth_users") or {}
    if not isinstance(raw_users, dict):
        raise ConfigError("basic_auth_users", "a mapping of user names to bcrypt hashes")
    for user, hashed in raw_users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"basic_auth_users.{user}", "a bcrypt hash", show_value=False)
        users[str(user)] = hashed.encode()
    return WebConfig(tls=context, users=MappingProxyType(users))
