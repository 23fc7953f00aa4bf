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

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from exporter.config import ConfigError, check_keys, read_yaml

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# What htpasswd -B and bcrypt write: $2a$/$2b$/$2y$, a two-digit cost 04..31, 53 base64 chars.
BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
# Each cost step doubles bcrypt's time: 10 takes ~80 ms, 14 over a second, 31 about a week (it
# would hold the one bcrypt thread, and every login, for that long). htpasswd -B makes 5.
MAX_BCRYPT_COST = 14


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The validated ``--web.config.file``: TLS context and basic-auth users."""

    tls: ssl.SSLContext | None = None
    users: MappingProxyType[str, bytes] = field(default_factory=lambda: MappingProxyType({}))


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
    data = read_yaml(file, "--web.config.file")
    block = check_keys("", data or {}, {"tls_server_config", "basic_auth_users"})
    context = None
    if block.get("tls_server_config") is not None:
        # Relative paths are relative to the web config file, as in exporter-toolkit.
        context = tls_context(block["tls_server_config"], file.parent)
    users = basic_auth_users(block.get("basic_auth_users") or {})
    return WebConfig(tls=context, users=MappingProxyType(users))


def tls_context(value: object, base: Path) -> ssl.SSLContext:
    """The server's TLS context from ``tls_server_config``, files read relative to ``base``."""
    tls = check_keys(
        "tls_server_config",
        value,
        {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"},
    )
    cert = _readable("tls_server_config.cert_file", tls.get("cert_file"), base)
    key = _readable("tls_server_config.key_file", tls.get("key_file"), base)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError, ValueError) as error:
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
        ca_file = _readable("tls_server_config.client_ca_file", tls["client_ca_file"], base)
        try:
            context.load_verify_locations(ca_file)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise ConfigError(
                "tls_server_config.client_ca_file", "a file of PEM CA certificates"
            ) from error
    elif context.verify_mode != ssl.CERT_NONE:
        raise ConfigError("tls_server_config.client_ca_file", f"a file with {auth_type}")
    if "min_version" in tls:
        if tls["min_version"] not in TLS_VERSIONS:
            raise ConfigError("tls_server_config.min_version", "TLS12 or TLS13", tls["min_version"])
        context.minimum_version = TLS_VERSIONS[tls["min_version"]]
    return context


def basic_auth_users(raw_users: object) -> dict[str, bytes]:
    """``basic_auth_users``: each user's bcrypt hash, checked whole."""
    if not isinstance(raw_users, dict):
        raise ConfigError("basic_auth_users", "a mapping of user names to bcrypt hashes")
    users: dict[str, bytes] = {}
    for user, hashed in raw_users.items():
        # Checked whole here: a malformed hash would otherwise fail every login at run time.
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            raise ConfigError(
                f"basic_auth_users.{user}",
                "a bcrypt hash like htpasswd -nbB makes ($2y$10$ and 53 more characters)",
                show_value=False,
            )
        cost = int(hashed.split("$")[2])
        if cost > MAX_BCRYPT_COST:
            raise ConfigError(
                f"basic_auth_users.{user}",
                f"a bcrypt cost of at most {MAX_BCRYPT_COST} (htpasswd -nbB -C 10), not {cost}",
                show_value=False,
            )
        users[str(user)] = hashed.encode()
    return users
