"""The HTTP side: ``/metrics``, a landing page, ``/healthz`` and ``/ready``.

Served from threads of a ``ThreadingHTTPServer``: a scrape reads the published snapshot and
never waits for a poll (polls run on the asyncio loop in another thread).
"""

from __future__ import annotations

import html
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from exporter import __version__
from exporter.webconfig import BasicAuth, WebConfig

log = logging.getLogger(__name__)

# The classic text format is what the exposition is written in (and what every Prometheus reads).
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exposition(Protocol):
    """What ``/metrics`` serves (``collector.MetricsRenderer``)."""

    def render_parts(self) -> tuple[bytes, ...]: ...

    def render_gzip(self) -> bytes: ...


class TargetReport(Protocol):
    """Per-target state for people (``status_page.StatusPage``)."""

    def html(self) -> bytes: ...

    def not_ready(self) -> str: ...


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port`` (``:port`` for all interfaces, ``[::1]:port`` for IPv6) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address: expected host:port or :port, got {address!r}")
    return host.strip("[]"), int(port)


def landing_page(telemetry_path: str) -> bytes:
    path = html.escape(telemetry_path, quote=True)
    return (
        "<!DOCTYPE html>\n<html><head><title>MaxCompute Exporter</title></head><body>\n"
        "<h1>MaxCompute Exporter</h1>\n"
        f"<p>Version {html.escape(__version__)}. Running jobs of Alibaba Cloud MaxCompute, "
        "from background polls of GetRunningJobs, by quota and project.</p>\n"
        f'<ul><li><a href="{path}">Metrics</a></li>\n'
        '<li><a href="/healthz">Health</a></li>\n<li><a href="/ready">Readiness</a></li></ul>\n'
        "</body></html>\n"
    ).encode()


class QuietThreadingHTTPServer(ThreadingHTTPServer):
    """A thread per request, a deep accept queue, and no traceback for a client that left."""

    daemon_threads = True
    # Prometheus scrapes from several replicas at once; a deeper accept queue absorbs bursts.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up mid-response (a timed-out poll or scrape) is not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ExporterHTTPServer(QuietThreadingHTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        exposition: Exposition,
        is_ready: Callable[[], bool],
        telemetry_path: str = "/metrics",
        web_config: WebConfig | None = None,
        report: TargetReport | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ExporterRequestHandler)
        web_config = web_config or WebConfig()
        self.tls = web_config.tls is not None
        if web_config.tls is not None:
            # The handshake happens in the request's own thread (finish_request), so a slow
            # client cannot stall the accept loop.
            self.socket = web_config.tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.basic_auth = BasicAuth(web_config.users)
        self.exposition = exposition
        self.is_ready = is_ready
        self.telemetry_path = telemetry_path
        self.landing = landing_page(telemetry_path)
        # With a report, / and /ready's 503 say which target fails and why.
        self.report = report

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if self.tls:
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as error:
                log.debug(
                    "TLS handshake failed", extra={"client": client_address[0], "error": str(error)}
                )
                return
        super().finish_request(request, client_address)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, args=(0.1,), name="web", daemon=True)
        thread.start()
        return thread


class ExporterRequestHandler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = f"maxcompute-exporter/{__version__}"
    # Headers and body go out in two writes; with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (up to 40 ms on Linux) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        # /healthz stays open: liveness probes carry no credentials and it reveals nothing.
        if path != "/healthz" and not self.server.basic_auth.check(
            self.headers.get("Authorization")
        ):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="maxcompute-exporter"')
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "13")
            self.end_headers()
            if not getattr(self, "_head_only", False):
                self.wfile.write(b"Unauthorized\n")
            return
        if path == self.server.telemetry_path:
            gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
            try:
                exposition = self.server.exposition
                body = (exposition.render_gzip(),) if gzipped else exposition.render_parts()
            except Exception:
                log.exception("rendering metrics failed")
                self._send(500, b"error rendering metrics\n", "text/plain; charset=utf-8")
                return
            self._send(200, body, EXPOSITION_CONTENT_TYPE, "gzip" if gzipped else None)
        elif path == "/":
            report = self.server.report
            page = report.html() if report else self.server.landing
            self._send(200, page, "text/html; charset=utf-8")
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/ready":
            if self.server.is_ready():
                self._send(200, b"ready\n", "text/plain; charset=utf-8")
            elif self.server.report:
                body = self.server.report.not_ready().encode()
                self._send(503, body, "text/plain; charset=utf-8")
            else:
                self._send(503, b"not ready: a target has not had a good poll yet\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:
        self._head_only = True
        self.do_GET()

    def _send(
        self,
        status: int,
        body: bytes | tuple[bytes, ...],
        content_type: str,
        encoding: str | None = None,
    ) -> None:
        parts = (body,) if isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(part) for part in parts)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        if not getattr(self, "_head_only", False):
            self.wfile.writelines(parts)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http request", extra={"client": self.client_address[0], "line": format % args})
