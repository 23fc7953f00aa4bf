"""The credential a request is signed with: static keys, or a source renewed in the background.

Sources are the providers of Alibaba Cloud's official ``alibabacloud-credentials`` package,
its default chain included; this module only decides *when* to ask them. A
``RenewingCredentials`` keeps the current credential and renews it in the background before it
expires, so a poll only reads it; it asks the source itself only when the current credential is
missing or too close to expiry, and never hands out one that expires within ``min_validity``
seconds (the time a request may take). A source that cannot produce a credential raises
``CredentialsError``, whose text names the source and never holds a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from alibabacloud_credentials.provider import (
    CLIProfileCredentialsProvider,
    DefaultCredentialsProvider,
    EcsRamRoleCredentialsProvider,
    OIDCRoleArnCredentialsProvider,
    RamRoleArnCredentialsProvider,
    StaticAKCredentialsProvider,
    StaticSTSCredentialsProvider,
)
from alibabacloud_credentials_api import ICredentials, ICredentialsProvider

from exporter.api.auth.credential_errors import safe_message
from exporter.api.auth.credentials_uri import BoundedUriProvider, with_bounded_uri
from exporter.api.auth.fetch_threads import FETCH_THREADS, FetchLimitError
from exporter.config import Credentials
from exporter.config.credential_model import CredentialSpec

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.credentials")

# The package logs through its own stderr handler, and its error texts carry response bodies
# that may hold secrets: failures are logged here instead, sanitised.
_package_log = logging.getLogger("credentials")
_package_log.handlers.clear()
_package_log.propagate = False
_package_log.disabled = True
# The package's HTTP goes through urllib3, whose debug lines show STS request URLs: their
# queries hold signatures, security tokens and OIDC tokens.
logging.getLogger("urllib3").setLevel(logging.WARNING)

# As the package: renew at most 15 minutes before expiry (half the lifetime if shorter).
REFRESH_AHEAD_MAX_SECONDS = 15 * 60
# A source that does not say when its credential expires is asked again this often.
UNKNOWN_EXPIRY_REFRESH_SECONDS = 60.0
RETRY_MAX_SECONDS = 30.0
# The longest one ask of a source may take, whatever its own timeouts (which are per read).
FETCH_LIMIT_SECONDS = 20.0
DEFAULT_ROLE_SESSION_NAME = "maxcompute-exporter"
# The name of the provider that the package's default chain settled on (a private attribute:
# the chain returns credentials without their expiry, its providers return them with it).
_CHAIN_LAST_PROVIDER = "_DefaultCredentialsProvider__last_used_provider"


class CredentialsError(Exception):
    """No usable credential; ``str()`` names the source and never holds a secret."""


class CredentialProvider(Protocol):
    """Hands out a valid credential for each request; closes what it holds on ``aclose``."""

    async def get(self) -> Credentials: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Lease:
    """A credential and when it was fetched and expires (Unix seconds; None: not said)."""

    credentials: Credentials
    fetched_at: float
    expires_at: float | None


def refresh_time(lease: Lease, min_validity: float) -> float:
    """When to renew ``lease``: 15 minutes before expiry, or half-way for shorter lifetimes."""
    if lease.expires_at is None:
        return lease.fetched_at + UNKNOWN_EXPIRY_REFRESH_SECONDS
    lifetime = lease.expires_at - lease.fetched_at
    ahead = max(2 * min_validity, min(REFRESH_AHEAD_MAX_SECONDS, lifetime / 2))
    return max(lease.fetched_at, lease.expires_at - ahead)


def usable(lease: Lease, now: float, min_validity: float) -> bool:
    """Whether a request signed with ``lease`` at ``now`` arrives before it expires."""
    return lease.expires_at is None or now < lease.expires_at - min_validity


def is_newer(lease: Lease, current: Lease | None) -> bool:
    """Whether ``lease`` should replace ``current`` (a source's cache may hand back the old one)."""
    if current is None or lease.expires_at is None or current.expires_at is None:
        return True
    return lease.expires_at > current.expires_at


def retry_delay(failures: int) -> float:
    """Seconds before another attempt after ``failures`` failed renewals in a row."""
    return min(RETRY_MAX_SECONDS, 0.5 * 2 ** max(0, failures - 1))


def lease_from(credential: ICredentials, fetched_at: float) -> Lease:
    """Our ``Lease`` for a credential of the package; CredentialsError if it is unusable."""
    key_id = credential.get_access_key_id()
    secret = credential.get_access_key_secret()
    token = credential.get_security_token() or None
    for value in (key_id, secret, token):
        if value is not None and not isinstance(value, str):
            raise CredentialsError("the source returned a credential field that is not text")
    if not key_id or not secret:
        raise CredentialsError("the source returned an empty AccessKey")
    if not all(v.isascii() and v.isprintable() for v in (key_id, secret, token or "")):
        raise CredentialsError("the source returned non-ASCII characters in a credential")
    expiration = getattr(credential, "get_expiration", lambda: None)()
    expires_at = float(expiration) if isinstance(expiration, (int, float)) else None
    return Lease(Credentials(key_id, secret, token), fetched_at, expires_at)


def build_provider(spec: CredentialSpec) -> ICredentialsProvider:
    """The package's provider for ``spec``; may raise ValueError (e.g. ECS metadata disabled)."""
    get = spec.get
    session = {"role_session_name": get("role_session_name") or DEFAULT_ROLE_SESSION_NAME}
    session.update(duration_seconds=get("duration") or 3600, policy=get("policy"))
    session.update(sts_endpoint=get("sts_endpoint"))
    if spec.type == "credentials_uri":
        return BoundedUriProvider(str(get("uri")))
    if spec.type == "ecs_ram_role":
        # Renewed by RenewingCredentials: no background thread of the package's own.
        return EcsRamRoleCredentialsProvider(
            role_name=get("role_name"),
            disable_imds_v1=get("disable_imds_v1"),
            async_update_enabled=False,
        )
    if spec.type == "oidc_role_arn":
        return OIDCRoleArnCredentialsProvider(
            role_arn=get("role_arn"),
            oidc_provider_arn=get("oidc_provider_arn"),
            oidc_token_file_path=get("oidc_token_file"),
            **session,
        )
    if spec.type == "ram_role_arn":
        keys = {name: get(name) for name in ("access_key_id", "access_key_secret")}
        source = (
            StaticSTSCredentialsProvider(security_token=get("security_token"), **keys)
            if get("security_token")
            else StaticAKCredentialsProvider(**keys)
        )
        return RamRoleArnCredentialsProvider(
            credentials_provider=source,
            role_arn=get("role_arn"),
            external_id=get("external_id"),
            **session,
        )
    if spec.type == "profile":
        return CLIProfileCredentialsProvider(profile_name=get("name"), profile_file=get("file"))
    if spec.type != "default":
        raise ValueError(f"unknown credential source type {spec.type}")
    return with_bounded_uri(DefaultCredentialsProvider())


class StaticCredentials:
    """Keys given in the configuration or the environment: nothing to renew."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get(self) -> Credentials:
        return self._credentials

    async def aclose(self) -> None:
        return None


class RenewingCredentials:
    """A source's current credential, renewed in the background before it expires."""

    def __init__(
        self,
        provider_factory: Callable[[], ICredentialsProvider],
        description: str,
        *,
        min_validity: float,
        clock: Callable[[], float] = time.time,
        fetch_limit: float = FETCH_LIMIT_SECONDS,
    ) -> None:
        self.description = description
        self._fetch_limit = fetch_limit
        self._factory = provider_factory
        self._provider: ICredentialsProvider | None = None
        self._min_validity = min_validity
        self._clock = clock
        self._lease: Lease | None = None
        self._inflight: asyncio.Future[Lease] | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def get(self) -> Credentials:
        """A credential valid for at least ``min_validity`` seconds, or CredentialsError."""
        lease = self._lease
        if lease is None or not usable(lease, self._clock(), self._min_validity):
            if lease is not None:
                log.warning(
                    "a poll waited for a credential renewal: the background renewal is late",
                    extra={"source": self.description},
                )
            lease = await self._renew_shared()
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())
        return lease.credentials

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    async def _renew_shared(self) -> Lease:
        """One renewal at a time: concurrent pages wait for the same one."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._renew())
            # Retrieved here so that a renewal nobody awaits any more is not reported unread.
            self._inflight.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(self._inflight)

    async def _renew(self) -> Lease:
        try:
            lease = await FETCH_THREADS.run(self._fetch, self._fetch_limit)
        except FetchLimitError as error:
            raise CredentialsError(f"no credentials from {self.description}: {error}") from None
        except CredentialsError as error:
            raise CredentialsError(f"no credentials from {self.description}: {error}") from None
        except Exception as error:  # the package raises many types, ValueError included
            raise CredentialsError(
                f"no credentials from {self.description}: {safe_message(error)}"
            ) from None
        if not usable(lease, self._clock(), self._min_validity):
            raise CredentialsError(
                f"{self.description} returned credentials that expire within "
                f"{self._min_validity:g}s"
            )
        if is_newer(lease, self._lease):
            self._lease = lease
        return self._lease

    def _fetch(self) -> Lease:
        """Runs in a worker thread: the package's providers do blocking I/O."""
        if self._provider is None:
            self._provider = self._factory()
        credential = self._provider.get_credentials()
        settled = getattr(self._provider, _CHAIN_LAST_PROVIDER, None)
        if settled is not None:
            # From now on ask the chain's chosen source directly, which tells the expiry.
            self._provider = settled
            credential = settled.get_credentials()
        return lease_from(credential, self._clock())

    async def _renew_forever(self) -> None:
        failures = 0
        while True:
            lease = self._lease
            if failures or lease is None:
                delay = retry_delay(failures)
            else:
                delay = refresh_time(lease, self._min_validity) - self._clock()
            await asyncio.sleep(max(0.0, delay))
            before = self._lease
            try:
                renewed = await self._renew_shared()
            except CredentialsError as error:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "credential renewal failed; retrying", extra={"error": str(error)})
                continue
            # The source handed back what we had (its own cache): ask again a bit later.
            failures = failures + 1 if renewed is before and renewed.expires_at else 0


def credential_provider(
    credentials: Credentials | CredentialSpec, *, min_validity: float
) -> StaticCredentials | RenewingCredentials:
    """What a client signs with: the keys themselves, or their renewing source."""
    if isinstance(credentials, Credentials):
        return StaticCredentials(credentials)
    return RenewingCredentials(
        lambda: build_provider(credentials), credentials.description, min_validity=min_validity
    )
