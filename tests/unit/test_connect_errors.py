"""Connection failures say where and why: real httpx errors from real loopback failures.

tests/integration/test_first_run.py shows the same causes in the exporter's poll-failure warning."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.api.connect_errors import describe_transport_error
from exporter.api.transport.aiohttp_transport import AiohttpTransport
from exporter.api.transport.tls import tls_context
from tests.support import tools
from tests.support.tools import free_port

UNRESOLVABLE = "maxcompute.cn-hangzou.invalid"  # RFC 6761: .invalid never resolves


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with tools.silent_port() as port:
        yield port


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A port that answers anything it receives with a plain-text HTTP 400, as HTTP servers do."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(5)


@pytest.fixture
def self_signed_port(certificate: tuple[Path, Path]) -> Iterator[int]:
    """A TLS port whose certificate no public CA signed; it completes no handshake it fails."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refuses the certificate: that is the point

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


# The API client's transport (aiohttp's pool) and httpx's own (the credentials-URI client's).
TRANSPORTS = {
    "aiohttp": lambda: AiohttpTransport(tls_context(), 4),
    "httpcore": lambda: None,
}


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


async def failure(url: str, transport: str, timeout: float = 5.0) -> httpx.TransportError:
    """The error httpx raises for a GET of ``url``, configured as the exporter's clients are."""
    async with httpx.AsyncClient(
        timeout=timeout, trust_env=False, transport=TRANSPORTS[transport]()
    ) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.get(url)
    return caught.value


def resolver_says(host: str) -> str:
    """What the system resolver says about ``host`` (the text differs offline and online)."""
    with pytest.raises(socket.gaierror) as caught:
        socket.getaddrinfo(host, 443)
    return caught.value.strerror


async def test_refused_port(transport: str) -> None:
    port = free_port()
    error = await failure(f"http://127.0.0.1:{port}/", transport)
    assert describe_transport_error(error, f"127.0.0.1:{port}") == (
        f"127.0.0.1:{port}: connection refused: nothing listens on that port"
    )


async def test_unresolvable_host(transport: str) -> None:
    error = await failure(f"https://{UNRESOLVABLE}/", transport)
    assert describe_transport_error(error, UNRESOLVABLE) == (
        f"{UNRESOLVABLE}: DNS lookup failed: {resolver_says(UNRESOLVABLE)}"
        " (check the region or endpoint)"
    )


async def test_tls_to_a_plain_http_port(plain_http_port: int, transport: str) -> None:
    error = await failure(f"https://127.0.0.1:{plain_http_port}/", transport)
    assert describe_transport_error(error, f"127.0.0.1:{plain_http_port}") == (
        f"127.0.0.1:{plain_http_port}: TLS handshake failed: the server does not speak TLS"
        " (an http:// endpoint?)"
    )


async def test_a_certificate_no_ca_signed(self_signed_port: int, transport: str) -> None:
    error = await failure(f"https://127.0.0.1:{self_signed_port}/", transport)
    assert describe_transport_error(error, f"127.0.0.1:{self_signed_port}") == (
        f"127.0.0.1:{self_signed_port}: TLS certificate not trusted: self-signed certificate"
    )


async def test_no_answer_within_the_timeout(silent_port: int, transport: str) -> None:
    error = await failure(f"http://127.0.0.1:{silent_port}/", transport, timeout=0.2)
    assert describe_transport_error(error, f"127.0.0.1:{silent_port}") == (
        f"127.0.0.1:{silent_port}: no response within poll.timeout"
    )


def test_a_connect_timeout_and_an_unknown_error() -> None:
    assert describe_transport_error(httpx.ConnectTimeout(""), "h") == (
        "h: no connection within poll.timeout"
    )
    assert describe_transport_error(httpx.ProxyError("x"), "h") == "h: ProxyError"
