"""Say why a request could not reach the API: DNS, refused, TLS or timeout, and where.

httpx reports all of these as one of a few exception types whose text is often only
"All connection attempts failed"; the cause is further down the exception chain.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx

# What each timeout means to the user, by httpx's exception type.
TIMEOUTS: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "no connection within poll.timeout"),
    (httpx.ReadTimeout, "no response within poll.timeout"),
    (httpx.WriteTimeout, "could not send the request within poll.timeout"),
    (httpx.PoolTimeout, "no free connection within poll.timeout"),
)


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def tls_cause(error: ssl.SSLError) -> str:
    """A TLS failure in words: the certificate problem, or the handshake's reason."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    reason = (error.reason or "").replace("_", " ").lower()
    if reason == "wrong version number":
        return "TLS handshake failed: the server does not speak TLS (an http:// endpoint?)"
    return f"TLS handshake failed: {reason or error.strerror or 'unknown reason'}"


def os_cause(error: OSError) -> str | None:
    """A socket-level failure in words, or None if ``error`` is not one we can name."""
    if isinstance(error, socket.gaierror):
        return f"DNS lookup failed: {error.strerror} (check the region or endpoint)"
    if isinstance(error, ssl.SSLError):
        return tls_cause(error)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: nothing listens on that port"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    if error.errno is not None and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return None


def describe_transport_error(error: httpx.TransportError, host: str) -> str:
    """``"<host>: <cause>"`` for a request that failed below HTTP, e.g. a refused connection."""
    for kind, meaning in TIMEOUTS:
        if isinstance(error, kind):
            return f"{host}: {meaning}"
    for link in exception_chain(error):
        if isinstance(link, OSError):
            cause = os_cause(link)
            if cause is not None:
                return f"{host}: {cause}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"{host}: the server closed the connection or broke HTTP ({error})"
    return f"{host}: {type(error).__name__}"
