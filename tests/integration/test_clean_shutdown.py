"""SIGTERM with clients connected is a clean shutdown: exit 0, and nothing above info logged
(issue 23, row 16: it logged ``level=error`` with an asyncio ``CancelledError``)."""

from __future__ import annotations

import contextlib
import signal
import socket

from tests.support.exporter_process import ExporterProcess


def kept_alive(port: int) -> socket.socket:
    """A connection that had one request answered and is kept alive, waiting for the next."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    return sock


def half_sent(port: int) -> socket.socket:
    """A connection whose request headers have not all arrived."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    return sock


def test_sigterm_with_open_connections_logs_nothing_above_info() -> None:
    process = ExporterProcess("--demo")
    sockets: list[socket.socket] = []
    try:
        process.wait_until("/ready")
        sockets = [kept_alive(process.port) for _ in range(10)]
        sockets += [half_sent(process.port) for _ in range(5)]
        process.process.send_signal(signal.SIGTERM)
        code = process.process.wait(15)
        # Every connection was closed by the server, none left hanging.
        for sock in sockets:
            # Aborted (a reset) is closed as well.
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(65536) == b""
    finally:
        process.stop()
        for sock in sockets:
            sock.close()
    log = process.log().splitlines()
    assert code == 0
    assert [line for line in log if " level=info " not in line] == []
    assert sum('msg="shutting down"' in line for line in log) == 1
