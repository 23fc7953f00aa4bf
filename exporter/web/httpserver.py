"""A small HTTP/1.1 server whose resources are bounded by its limits, not by its clients.

Go's ``http.Server`` (which the exporter-toolkit and Prometheus serve with) keeps a cheap
goroutine per connection and bounds each with header-read, idle and TLS-handshake timeouts;
Prometheus caps connections with ``--web.max-connections``. Here the same shape is an asyncio
loop in one thread: a connection that sends nothing costs a socket and a coroutine, never a
thread, and the handler's work goes to a fixed pool of worker threads (see ``web/server.py``).

How many connections it holds, and who gives way to a newcomer, is ``web/admission.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType

from exporter.web.admission import Connection, ConnectionSlots

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.httpserver")

TOKEN_CHARACTERS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
# Small body parts are sent joined up to this size; larger ones as they are. And a response
# may wait in a connection's write buffer up to this much before the writer waits for the
# client (asyncio's default is 64 KiB). A fleet's ~80 MB plain /metrics went out in ~1 250
# rounds of 64 KiB, each waiting for the interpreter while polls render: p99 788 ms at 50
# targets; in 1 MiB rounds 361 ms (bench/fleet.py, same hour). 4 MiB gave 292 ms, but a flood
# of slow readers (64 connections at most) could then hold ~4x the memory.
SEND_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one client can hold of the server; docs/hardening.md lists these."""

    max_connections: int = 64
    # From accepting a connection (or the end of TLS) to the end of its request headers.
    header_timeout: float = 10.0
    # How long a kept-alive connection may wait for its next request.
    idle_timeout: float = 120.0
    # Waiting this long (for a request, or idle after one), a connection gives its place to a
    # newcomer before any other does: real clients send at once, scrapers reuse theirs sooner.
    stalled_after: float = 1.0
    # When every connection is mid-request, how long a newcomer waits for one to finish.
    admission_wait: float = 5.0
    tls_handshake_timeout: float = 10.0
    # Sending one response; a client that does not read is dropped.
    write_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed HTTP request: method, path, headers."""

    method: str
    target: str
    # Lower-case names; a repeated header's values joined with ", " (RFC 9110, 5.3).
    headers: Mapping[str, str]
    client: str

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response to send: status, body parts, headers, whether to close."""

    status: int
    body: tuple[bytes, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    # Close the connection after this response (e.g. after refusing credentials).
    close: bool = False
    # HEAD: the headers of the full response, no body.
    head_only: bool = False


Handler = Callable[[Request], Awaitable[Response]]


def plain(status: int, text: str, *, close: bool = False) -> Response:
    body = text.encode()
    return Response(status, (body,), (("Content-Type", "text/plain; charset=utf-8"),), close)


def parse_head(head: bytes, client: str) -> Request | None:
    """The request line and headers, or None when they are not well-formed HTTP/1.1."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1]:
        return None
    if not set(parts[0].lower()) <= TOKEN_CHARACTERS or not parts[0]:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        # Folded lines and spaces before the colon are refused (RFC 9112, 5.1 and 5.2).
        if not sep or not name or not set(name.lower()) <= TOKEN_CHARACTERS:
            return None
        name, value = name.lower(), value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if parts[2] == "HTTP/1.0":
        headers["connection"] = "close"
    return Request(parts[0], parts[1], MappingProxyType(headers), client)


def response_bytes(response: Response, close: bool) -> tuple[bytes, ...]:
    length = sum(len(part) for part in response.body)
    lines = [f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return (head,) if response.head_only else (head, *response.body)


def send_batches(parts: Iterable[bytes], size: int = SEND_BATCH_BYTES) -> Iterator[bytes]:
    """``parts`` in order, small ones joined into batches of about ``size``, large ones as
    they are (never copied)."""
    batch: list[bytes] = []
    length = 0
    for part in parts:
        if len(part) >= size:
            if batch:
                yield b"".join(batch)
                batch, length = [], 0
            yield part
            continue
        batch.append(part)
        length += len(part)
        if length >= size:
            yield b"".join(batch)
            batch, length = [], 0
    if batch:
        yield b"".join(batch)


async def send(writer: asyncio.StreamWriter, parts: Iterable[bytes]) -> None:
    """Write ``parts`` a batch at a time, waiting for the client whenever the transport's
    buffer is full: Python 3.11's ``writelines`` joins its parts first, for a fleet's plain
    ``/metrics`` an ~80 MB copy holding the interpreter for tens of ms, then buffers all of it."""
    writer.transport.set_write_buffer_limits(high=SEND_BATCH_BYTES)
    for batch in send_batches(parts):
        writer.write(batch)
        await writer.drain()


class BoundedHTTPServer:
    """Serves ``handler`` on ``address`` from a thread of its own (``serve_in_thread``)."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        limits: ServerLimits | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        # Bound here, so that a taken port fails at start with an OSError, before any thread.
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(address)
            # A deep accept queue: the kernel holds a burst until the loop takes it.
            self._socket.listen(128)
        except OSError:
            self._socket.close()
            raise
        self.server_address = self._socket.getsockname()
        self._handler = handler
        self.limits = limits or ServerLimits()
        self.tls = tls
        self._connections = ConnectionSlots(
            self.limits.max_connections, self.limits.stalled_after, self.limits.admission_wait
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def serve_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="web")
        self._thread.daemon = True
        self._thread.start()
        self._started.wait(10)
        return self._thread

    def shutdown(self) -> None:
        """Stop accepting, close every connection and wait for the server thread to end."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def server_close(self) -> None:
        self._socket.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._on_connection, sock=self._socket, limit=self.limits.max_header_bytes
        )
        self._started.set()
        await self._stop.wait()
        server.close()
        for connection in self._connections.connections():
            connection.writer.transport.abort()
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        connection = Connection(writer, peer=str(peer[0]) if peer else "")
        if not await self._connections.admit(connection):
            writer.transport.abort()
            return
        try:
            if self.tls is not None:
                await writer.start_tls(
                    self.tls, ssl_handshake_timeout=self.limits.tls_handshake_timeout
                )
            await self._requests(reader, connection)
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as error:
            log.debug("connection ended", extra={"client": connection.peer, "error": str(error)})
            connection.writer.transport.abort()
        except asyncio.CancelledError:
            # The server stopping: the connection ends here, not cancelled, since Python 3.11's
            # streams log a cancelled connection task as an error ("Exception in callback").
            connection.writer.transport.abort()
        except Exception:
            # A bug here must cost one connection, never the server.
            log.exception("serving a connection failed", extra={"client": connection.peer})
            connection.writer.transport.abort()
        finally:
            self._connections.release(connection)
            # A graceful close: what drain() left in the buffer is still sent.
            if not connection.writer.transport.is_closing():
                connection.writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, connection: Connection
    ) -> Request | Response | None:
        """The next request; a Response when it must be refused; None when the client left."""
        wait = self.limits.header_timeout if connection.state == "new" else self.limits.idle_timeout
        try:
            async with asyncio.timeout(wait):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return plain(431, "request headers too large\n", close=True)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return None
        connection.state = "busy"
        request = parse_head(head, connection.peer)
        if request is None:
            return plain(400, "bad request\n", close=True)
        if "transfer-encoding" in request.headers:
            return plain(501, "request bodies must have a Content-Length\n", close=True)
        length = request.headers.get("content-length", "0")
        # isascii: str.isdigit() also takes "²", which int() refuses.
        if not (length.isascii() and length.isdigit()) or int(length) > self.limits.max_body_bytes:
            return plain(413, "request body too large\n", close=True)
        if int(length):
            async with asyncio.timeout(self.limits.header_timeout):
                await reader.readexactly(int(length))
        return request

    async def _requests(self, reader: asyncio.StreamReader, connection: Connection) -> None:
        while True:
            request = await self._read_request(reader, connection)
            if request is None:
                return
            if isinstance(request, Response):
                response, close = request, True
            else:
                try:
                    response = await self._handler(request)
                except Exception:
                    log.exception("handling a request failed")
                    response = plain(500, "internal error\n", close=True)
                close = response.close or request.headers.get("connection", "").lower() == "close"
            async with asyncio.timeout(self.limits.write_timeout):
                await send(connection.writer, response_bytes(response, close))
            if close:
                return
            self._connections.finished_request(connection)
