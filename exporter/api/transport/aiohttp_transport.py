"""httpx requests sent through aiohttp's connection pool: the same ``httpx.AsyncClient`` API, a
cost per request that stays flat with the connections in flight.

httpcore's pool scans every connection on every request (with a socket readability check on
each): at 32 in flight that was 45 % of the exporter's CPU, 5.8 ms a request against 1.8 ms at 4
(issue 24; ``bench/transport.py`` measures both). aiohttp keeps its idle connections in a queue
per host. Only the connection pool changes: the client still reads the raw body (aiohttp
inflates nothing, so ``read_bounded``'s cap holds), bounds the whole request, and gets httpx's
exception types with the cause chained, so ``describe_transport_error`` names it as before.

Not the ``httpx-aiohttp`` package (0.2.0): it reports a refused, reset or untrusted connection
as ``httpx.ConnectTimeout``, lets aiohttp's malformed-answer errors through unwrapped, and
builds a TLS context per transport.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx

# How long an idle connection is kept, as httpx's default (``httpx.Limits``).
KEEPALIVE_SECONDS = 5.0


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One target's pool of at most ``max_connections`` HTTP/1.1 connections, over aiohttp.

    The aiohttp session is made on the first request, inside the event loop it belongs to.
    """

    def __init__(self, tls: ssl.SSLContext, max_connections: int) -> None:
        self._tls = tls
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_SECONDS,
                ssl=self._tls,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # httpx's client keeps the cookies and decides the headers; aiohttp adds none.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The answer's status and headers; its body streams as it is read (see ``AiohttpBody``)."""
        timeout = request.extensions.get("timeout", {})
        try:
            answer = await self._open_session().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=request.content or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise as_httpx_error(error, connecting=True) from error_cause(error)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            stream=AiohttpBody(answer),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AiohttpBody(httpx.AsyncByteStream):
    """An answer's body as aiohttp receives it, undecoded; closing it frees its connection."""

    def __init__(self, answer: aiohttp.ClientResponse) -> None:
        self._answer = answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise as_httpx_error(error, connecting=False) from error_cause(error)

    async def aclose(self) -> None:
        # A body left unread (over the cap, or the request's time up) closes its connection.
        self._answer.release()


def error_cause(error: BaseException) -> BaseException:
    """What ``error`` wraps, where the words for it are: the socket's or TLS's own error."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return error.certificate_error
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.os_error
    return error.__cause__ if isinstance(error.__cause__, OSError) else error


def as_httpx_error(error: BaseException, *, connecting: bool) -> httpx.TransportError:
    """The httpx exception type that says what happened, as httpcore would have raised it."""
    text = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(error, TimeoutError):
        return httpx.ReadTimeout(text)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text)
    if isinstance(error, aiohttp.ClientResponseError):
        # aiohttp's parser refused the answer (a header too long, a malformed status line).
        return httpx.RemoteProtocolError(error.message)
    if isinstance(error, OSError):
        return httpx.ConnectError(text) if connecting else httpx.ReadError(text)
    return httpx.RemoteProtocolError(text) if not connecting else httpx.ConnectError(text)
