"""A target's ``credentials:`` block: which source, with which settings, checked at load.

Nothing here contacts a service. Static keys (``access_key``, ``sts``, or the environment's
AccessKey) become ``Credentials`` at once; every other source becomes a ``CredentialSpec``,
turned into a live source by ``exporter.api.auth.credentials`` when the exporter starts polling.
An error never echoes a value from this block: any of them may be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from exporter.config.credential_model import Credentials, CredentialSpec, Setting
from exporter.config.files import read_bounded_file
from exporter.config.values import ConfigError, non_empty_string, parse_duration

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"

# STS refuses sessions shorter than 15 minutes.
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43200
SAFE_KEY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Per type: required settings, optional settings. A `*_secret`/`*_token` setting may be
# given as `<name>_file` instead (a Kubernetes Secret mounted as a file).
SECRET_SETTINGS = frozenset({"access_key_secret", "security_token"})
HEADER_SETTINGS = SECRET_SETTINGS | {"access_key_id"}
SOURCE_SETTINGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "access_key": (frozenset({"access_key_id", "access_key_secret"}), frozenset()),
    "sts": (frozenset({"access_key_id", "access_key_secret", "security_token"}), frozenset()),
    "ram_role_arn": (
        frozenset({"access_key_id", "access_key_secret", "role_arn"}),
        frozenset(
            {"security_token", "role_session_name", "duration", "policy", "external_id"}
            | {"sts_endpoint"}
        ),
    ),
    "oidc_role_arn": (
        frozenset({"role_arn", "oidc_provider_arn", "oidc_token_file"}),
        frozenset({"role_session_name", "duration", "policy", "sts_endpoint"}),
    ),
    "ecs_ram_role": (frozenset(), frozenset({"role_name", "disable_imds_v1"})),
    "credentials_uri": (frozenset({"uri"}), frozenset()),
    "profile": (frozenset(), frozenset({"name", "file"})),
}
SOURCE_TYPES = tuple(SOURCE_SETTINGS)


def _text(key: str, value: object) -> str:
    # Everything under credentials: is treated as secret: never shown, numbers told to quote.
    return non_empty_string(key, value, secret=True).strip()


def _ascii_text(key: str, value: object) -> str:
    text = _text(key, value)
    if not text.isascii() or not text.isprintable():
        # Sent in HTTP headers, which carry ASCII only: refuse it here, not at the first poll.
        raise ConfigError(key, "printable ASCII characters only", show_value=False)
    return text


def _read_secret_file(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "a file path", show_value=False)
    try:
        text = read_bounded_file(value, key).decode("utf-8")
    except (ConfigError, UnicodeDecodeError) as error:
        # The path itself is not shown either: it may say whose secret it is.
        raise ConfigError(key, "a readable UTF-8 file", show_value=False) from error
    return _ascii_text(key, text)


def _setting(key: str, name: str, block: dict, required: bool) -> Setting | None:
    """One setting: ``name`` or, for secrets, ``name_file``; None if optional and absent."""
    file_name = f"{name}_file"
    if name in SECRET_SETTINGS and file_name in block:
        if name in block:
            raise ConfigError(f"{key}.{name}", f"either {name} or {file_name}, not both")
        return _read_secret_file(f"{key}.{file_name}", block[file_name])
    if name not in block:
        if required:
            also = f" (or {file_name})" if name in SECRET_SETTINGS else ""
            raise ConfigError(f"{key}.{name}", f"a value{also} for this credential type")
        return None
    value = block[name]
    if name == "duration":
        seconds = parse_duration(f"{key}.duration", value)
        if not MIN_SESSION_SECONDS <= seconds <= MAX_SESSION_SECONDS:
            raise ConfigError(f"{key}.duration", "a session length from 15m to 12h", value)
        return int(seconds)
    if name == "disable_imds_v1":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}.{name}", "true or false", show_value=False)
        return value
    # Keys and tokens travel in HTTP headers; paths, names and policies need not be ASCII.
    check = _ascii_text if name in HEADER_SETTINGS else _text
    text = check(f"{key}.{name}", value)
    if name in ("uri", "sts_endpoint") and not _is_endpoint(name, text):
        expected = "an http(s) URL" if name == "uri" else "a host name or an http(s) URL"
        raise ConfigError(f"{key}.{name}", expected, show_value=False)
    return text


def _is_endpoint(name: str, text: str) -> bool:
    if name == "sts_endpoint" and "://" not in text:
        return bool(re.match(r"^[A-Za-z0-9.-]+(:\d+)?$", text))
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _allowed_keys(kind: str) -> set[str]:
    required, optional = SOURCE_SETTINGS[kind]
    names = required | optional
    return {"type"} | set(names) | {f"{n}_file" for n in names & SECRET_SETTINGS}


def _check_block_keys(key: str, block: Mapping, allowed: set[str]) -> None:
    for name in block:
        if name not in allowed:
            # A key under credentials may be a pasted secret: name it only if it looks like one.
            safe = isinstance(name, str) and SAFE_KEY_NAME.match(name)
            raise ConfigError.unknown_key(f"{key}.{name}" if safe else key, allowed)


def _source_type(key: str, block: Mapping) -> str:
    kind = block.get("type")
    if kind is None and "access_key_id" in block:
        # The block before typed sources existed: an AccessKey, with a token for STS.
        return "sts" if {"security_token", "security_token_file"} & set(block) else "access_key"
    if not isinstance(kind, str) or kind not in SOURCE_SETTINGS:
        raise ConfigError(f"{key}.type", f"one of {', '.join(SOURCE_TYPES)}", show_value=False)
    return kind


def parse_credentials(
    key: str, value: object, environ: Mapping[str, str]
) -> Credentials | CredentialSpec:
    """A target's credentials: static keys, or the source to resolve them from."""
    if value is None:
        return credentials_from_environment(key, environ)
    if not isinstance(value, dict):
        raise ConfigError(
            key, f"a mapping with a type ({', '.join(SOURCE_TYPES)})", show_value=False
        )
    kind = _source_type(key, value)
    _check_block_keys(key, value, _allowed_keys(kind))
    required, optional = SOURCE_SETTINGS[kind]
    settings: dict[str, Setting] = {}
    for name in sorted(required | optional):
        setting = _setting(key, name, value, name in required)
        if setting is not None:
            settings[name] = setting
    if kind in ("access_key", "sts"):
        return Credentials(
            str(settings["access_key_id"]),
            str(settings["access_key_secret"]),
            str(settings["security_token"]) if "security_token" in settings else None,
        )
    return CredentialSpec(kind, tuple(sorted(settings.items())))


def credentials_from_environment(
    key: str, environ: Mapping[str, str]
) -> Credentials | CredentialSpec:
    """The environment's AccessKey if it has one (the chain's first source), else the chain."""

    def check(name: str) -> str:
        return _ascii_text(f"{key} (from {name})", environ[name])

    if not environ.get(ENV_ACCESS_KEY_ID) or not environ.get(ENV_ACCESS_KEY_SECRET):
        return CredentialSpec()
    token = check(ENV_SECURITY_TOKEN) if environ.get(ENV_SECURITY_TOKEN) else None
    return Credentials(check(ENV_ACCESS_KEY_ID), check(ENV_ACCESS_KEY_SECRET), token)
