"""``Authorization: Basic`` checked against bcrypt hashes, as the exporter-toolkit does it.

bcrypt costs tens of milliseconds by design. So that neither scrapes nor floods of wrong
passwords pay it on every request:

- every verdict is cached under a keyed digest of user, hash and password, never the password
  itself; a cached credential costs one HMAC. Good verdicts are kept apart from bad ones and
  refreshed on every hit: a flood of wrong passwords fills only its own cache, so a scraper's
  known-good credential is never forgotten behind the guesses (and never waits for bcrypt);
- bcrypt itself runs one at a time (exporter-toolkit's ``bcryptMtx``), so a flood of new wrong
  passwords queues behind itself and never holds more than one core;
- an unknown user is checked against a dummy hash of the same cost, so that the time of an
  answer does not tell which user names exist. The dummy is made on first use, on the bcrypt
  thread: building a ``BasicAuth`` (at a reload, on the poll loop) runs no bcrypt.
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

# Wrong credentials remembered; past this the oldest is forgotten (a flood cannot grow it).
CACHE_SIZE = 1024
# Good credentials remembered, least recently used forgotten first. Only someone who knows a
# password adds one, so a few scrapers and people (and their rotations) fit.
GOOD_CACHE_SIZE = 64


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
        self.users = dict(users)
        # A fresh key per process: cached digests say nothing outside it.
        self._key = os.urandom(32)
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._bad: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self._cost = max((bcrypt_cost(h) for h in self.users.values()), default=4)
        self._dummy: bytes | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    def _digest(self, user: str, password: bytes) -> bytes:
        message = b"\0".join((user.encode(), self.users.get(user, b""), password))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def cached(self, header: str | None) -> bool | None:
        """The verdict if it needs no bcrypt (no auth, malformed, or seen before), else None."""
        if not self.users:
            return True
        credentials = parse_basic(header)
        if credentials is None:
            return False
        digest = self._digest(*credentials)
        with self._cache_lock:
            if digest in self._good:
                self._good.move_to_end(digest)
                return True
            return False if digest in self._bad else None

    def check(self, header: str | None) -> bool:
        """True when the credentials are good; may run bcrypt (one caller at a time)."""
        verdict = self.cached(header)
        if verdict is not None:
            return verdict
        user, password = parse_basic(header) or ("", b"")
        with self._bcrypt_lock:
            hashed = self.users.get(user) or self._dummy_hash()
            try:
                good = bcrypt.checkpw(password, hashed)
            except ValueError:
                # Longer than bcrypt's 72 bytes: no configured password is, so it is wrong.
                good = False
        verdict = user in self.users and good
        cache, size = (self._good, GOOD_CACHE_SIZE) if verdict else (self._bad, CACHE_SIZE)
        with self._cache_lock:
            cache[self._digest(user, password)] = None
            if len(cache) > size:
                cache.popitem(last=False)
        return verdict

    def _dummy_hash(self) -> bytes:
        """A hash of the configured cost for unknown users; call holding the bcrypt lock."""
        if self._dummy is None:
            self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=self._cost))
        return self._dummy
