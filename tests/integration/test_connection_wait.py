"""At ``--web.max-connections`` with every connection mid-request, a newcomer waits for the first
to finish its request instead of being refused at once (issue 23, row 17). Real server, raw
sockets on loopback."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time

from exporter.web.httpserver import ServerLimits
from tests.support.web_server import BODY, StaticExposition, running_server

# A request whose 5-byte body has not come yet: its connection is mid-request until it does.
UNFINISHED = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    # A refused connection is reset (RST) rather than closed: the same "closed" to a client.
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def mid_request(base: str, count: int) -> list[socket.socket]:
    """``count`` connections, each with its request head sent and its body not."""
    held = [connect(base) for _ in range(count)]
    for sock in held:
        sock.sendall(UNFINISHED)
    time.sleep(0.2)  # only lets the server read the heads; nothing below depends on its length
    return held


def test_a_newcomer_waits_for_the_first_connection_to_finish_its_request() -> None:
    with running_server(StaticExposition(), limits=ServerLimits(max_connections=4)) as base:
        held = mid_request(base, 4)
        newcomer = connect(base)
        try:
            newcomer.sendall(SCRAPE)
            # Not refused at once: half a second on, neither answered nor closed.
            newcomer.settimeout(0.5)
            try:
                early = newcomer.recv(65536)
            except TimeoutError:
                early = None
            assert early is None
            # One connection finishes its request: the newcomer takes its place.
            held[0].sendall(b"hello")
            newcomer.settimeout(10)
            answer = read_to_end(newcomer)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(BODY)
            # The finished one got its answer, then was closed cleanly between requests.
            assert read_to_end(held[0]).startswith(b"HTTP/1.1 405 ")
            # The three still mid-request were left alone: each is served when its body comes.
            for sock in held[1:]:
                sock.sendall(b"hello")
                assert sock.recv(65536).startswith(b"HTTP/1.1 405 ")
        finally:
            for sock in [*held, newcomer]:
                sock.close()


def test_a_newcomer_is_refused_once_no_connection_finished_within_the_wait() -> None:
    limits = ServerLimits(max_connections=2, admission_wait=0.5)
    with running_server(StaticExposition(), limits=limits) as base:
        held = mid_request(base, 2)
        newcomer = connect(base)
        try:
            started = time.monotonic()
            newcomer.sendall(SCRAPE)
            assert read_to_end(newcomer) == b""
            assert 0.4 < time.monotonic() - started < 5
        finally:
            for sock in [*held, newcomer]:
                sock.close()


class Probers:
    """``count`` kept-alive clients that each send ``GET /healthz`` when ``go`` opens, all at
    once, then read their answer; one whose connection was closed connects again."""

    def __init__(self, base: str, count: int) -> None:
        self.base = base
        self.go = threading.Barrier(count + 1)
        self.done = threading.Barrier(count + 1)
        self._threads = [threading.Thread(target=self._probe, daemon=True) for _ in range(count)]
        self._stop = False

    def __enter__(self) -> Probers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.go.abort()
        self.done.abort()
        for thread in self._threads:
            thread.join(10)

    def _probe(self) -> None:
        sock: socket.socket | None = None
        with contextlib.suppress(threading.BrokenBarrierError):
            while not self._stop:
                self.go.wait(30)
                try:
                    sock = sock or connect(self.base)
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    if not sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n"):
                        raise ConnectionError("closed")
                except OSError:
                    if sock is not None:
                        sock.close()
                    sock = None
                self.done.wait(30)
        if sock is not None:
            sock.close()


def test_80_probers_mid_request_at_once_never_keep_a_fresh_scrape_out() -> None:
    # The issue found 1-2 of 20 fresh scrapes refused (or over 1 s) at 64; with all 80 probing
    # in step, the server before this change refused 16-19 of 20.
    with (
        running_server(StaticExposition(), limits=ServerLimits(max_connections=64)) as base,
        Probers(base, 80) as probers,
    ):
        answers, seconds = [], []
        for _ in range(20):
            probers.go.wait(30)
            started = time.monotonic()
            with connect(base) as sock:
                sock.sendall(SCRAPE)
                answers.append(read_to_end(sock))
            seconds.append(time.monotonic() - started)
            probers.done.wait(30)
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 20
    assert all(a.endswith(BODY) for a in answers)
    # Generous for a loaded machine; below the admission wait (5 s), which a refusal would use.
    assert max(seconds) < 4.5
    ordered = sorted(seconds)
    print(f"fresh scrapes: p50 {ordered[10]:.4f}s max {ordered[-1]:.4f}s", file=sys.stderr)
