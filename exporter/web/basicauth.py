"""``Authorization: Basic`` checked against bcrypt hashes, as the exporter-toolkit does it.

bcrypt costs tens of milliseconds by design. So that neither scrapes nor floods of wrong
passwords pay it on every request:

- every verdict (good or bad) is cached under a keyed digest of user, hash and password, never
  the password itself; a cached credential costs one HMAC;
- bcrypt itself runs one at a time (exporter-toolkit's ``bcryptMtx``), so a flood of new wrong
  passwords queues behind itself and never holds more than one core;
- an unknown user is checked against a dummy hash of the same cost, so that the time of an
  answer does not tell which user names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

# Verdicts remembered; past this the oldest is forgotten (a flood cannot grow it).
CACHE_SIZE = 1024


def bcrypt_cost(hashed: bytes) -> int:
    """The cost factor of a ``$2?$NN$...`` hash."""
    return int(hashed.split(b"$")[2])


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None if it is not one."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True)
    except (ValueError, binascii.Error):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class BasicAuth:
    """Decides whether a request's credentials are good; ``check`` is safe from any thread."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        # A fresh key per process: cached digests say nothing outside it.
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        cost = max((bcrypt_cost(h) for h in self._users.values()), default=4)
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=cost))

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def _digest(self, user: str, hashed: bytes, password: bytes) -> bytes:
        message = b"\0".join((user.encode(), hashed, password))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def cached(self, header: str | None) -> bool | None:
        """The verdict if it needs no bcrypt (no auth, malformed, or seen before), else None."""
        if not self._users:
            return True
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = self._digest(user, self._users.get(user, self._dummy), password)
        with self._cache_lock:
            return self._cache.get(digest)

    def check(self, header: str | None) -> bool:
        """True when the credentials are good; may run bcrypt (one caller at a time)."""
        verdict = self.cached(header)
        if verdict is not None:
            return verdict
        user, password = parse_basic(header) or ("", b"")
        known = user in self._users
        hashed = self._users.get(user, self._dummy)
        with self._bcrypt_lock:
            try:
                good = bcrypt.checkpw(password, hashed)
            except ValueError:
                # Longer than bcrypt's 72 bytes: no configured password is, so it is wrong.
                good = False
        verdict = known and good
        digest = self._digest(user, hashed, password)
        with self._cache_lock:
            self._cache[digest] = verdict
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return verdict
