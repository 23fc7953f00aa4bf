"""The HTTP side: ``/metrics``, a landing page, ``/healthz``, ``/ready`` and ``/-/reload``.

Served by ``httpserver.BoundedHTTPServer`` (connections on an asyncio loop in a thread of its
own) with a fixed pool of worker threads rendering responses: a scrape reads the published
snapshot and never waits for a poll (polls run on the main asyncio loop).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from exporter import __version__
from exporter.web.basicauth import BasicAuth
from exporter.web.httpserver import BoundedHTTPServer, Request, Response, ServerLimits, plain
from exporter.web.webconfig import WebConfig

# The logger's name is part of every log line (logger=...): it stays as it was published.
log = logging.getLogger("exporter.web")

# The classic text format is what the exposition is written in (and what every Prometheus reads).
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Threads rendering responses: a scrape takes a few ms of CPU, and the machine few cores.
WORKER_THREADS = 4
# Credentials waiting for bcrypt (which runs one at a time) before more are answered 503.
MAX_BCRYPT_WAITING = 8
# Paths that say nothing secret and that probes reach without credentials.
OPEN_PATHS = frozenset({"/healthz", "/ready"})
LIFECYCLE_PATH = "/-/reload"
# Prometheus's own words, then what to do.
LIFECYCLE_DISABLED = (
    "Lifecycle API is not enabled. Start with --web.enable-lifecycle, or send SIGHUP.\n"
)
# A reload that hangs (an HTTP client that will not close) fails its request, never the server.
RELOAD_TIMEOUT_SECONDS = 60.0


class Exposition(Protocol):
    """What ``/metrics`` serves (``metrics.rendering.MetricsRenderer``)."""

    def render_parts(self) -> tuple[bytes, ...]: ...

    def render_gzip(self) -> bytes: ...


class TargetReport(Protocol):
    """Per-target state for people (``web.status_page.StatusPage``)."""

    def html(self) -> bytes: ...

    def not_ready(self) -> str: ...

    def not_ready_reasons(self) -> str: ...


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port`` (``:port`` for all interfaces, ``[::1]:port`` for IPv6) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address: expected host:port or :port, got {address!r}")
    return host.strip("[]"), int(port)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether gzip is acceptable and preferred over identity (RFC 9110, 12.5.3).

    Codings are case-insensitive; ``q=0`` means "not acceptable"; ``*`` stands for any coding
    not listed. gzip is served unless identity is listed with a higher weight.
    """
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for element in accept_encoding.split(","):
        coding, *params = (part.strip() for part in element.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    gzip = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    identity = weights.get("identity")
    return gzip > 0 and (identity is None or gzip >= identity)


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


class ExporterHTTPServer(BoundedHTTPServer):
    """The exporter's endpoints over a ``BoundedHTTPServer``.

    ``exposition`` and ``is_ready`` may be replaced while serving (a configuration reload);
    ``reload``, when given and ``enable_lifecycle`` is set (``--web.enable-lifecycle``), serves
    ``POST /-/reload``: it returns an error line or None. Without the flag the endpoint answers
    403, as Prometheus's does.
    """

    def __init__(
        self,
        address: tuple[str, int],
        exposition: Exposition,
        is_ready: Callable[[], bool],
        telemetry_path: str = "/metrics",
        web_config: WebConfig | None = None,
        *,
        limits: ServerLimits | None = None,
        reload: Callable[[], Awaitable[str | None]] | None = None,
        report: TargetReport | None = None,
        enable_lifecycle: bool = False,
    ) -> None:
        web_config = web_config or WebConfig()
        super().__init__(address, self._handle, limits, web_config.tls)
        self.basic_auth = BasicAuth(web_config.users)
        self.exposition = exposition
        self.is_ready = is_ready
        self.telemetry_path = telemetry_path
        self.landing = landing_page(telemetry_path)
        self.reload = reload
        self.enable_lifecycle = enable_lifecycle
        # With a report, / and /ready's 503 say which target fails and why.
        self.report = report
        self._workers = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="web-worker")
        self._bcrypt = ThreadPoolExecutor(1, thread_name_prefix="web-bcrypt")
        self._bcrypt_waiting = 0

    def serve_state(
        self, exposition: Exposition, is_ready: Callable[[], bool], report: TargetReport | None
    ) -> None:
        """Serve this exposition, readiness and report from now on (a reload swaps them)."""
        self.exposition = exposition
        self.is_ready = is_ready
        self.report = report

    def use_web_config(self, web_config: WebConfig) -> None:
        """Serve new connections with this TLS and these users (a reload).

        Unchanged users keep their cached verdicts: a reload costs a scraper no bcrypt.
        """
        if web_config.users != self.basic_auth.users:
            self.basic_auth = BasicAuth(web_config.users)
        self.tls = web_config.tls

    def server_close(self) -> None:
        super().server_close()
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._bcrypt.shutdown(wait=False, cancel_futures=True)

    async def _authorised(self, request: Request) -> Response | None:
        """None if the request may go on, else the refusal to send."""
        header = request.headers.get("authorization")
        verdict = self.basic_auth.cached(header)
        if verdict is None:
            if self._bcrypt_waiting >= MAX_BCRYPT_WAITING:
                refusal = plain(503, "too many logins at once, retry later\n", close=True)
                return Response(503, refusal.body, (*refusal.headers, ("Retry-After", "1")), True)
            self._bcrypt_waiting += 1
            try:
                loop = asyncio.get_running_loop()
                verdict = await loop.run_in_executor(self._bcrypt, self.basic_auth.check, header)
            finally:
                self._bcrypt_waiting -= 1
        if verdict:
            return None
        # Closing makes a client that guesses pay a new connection per guess.
        refusal = plain(401, "Unauthorized\n", close=True)
        challenge = ("WWW-Authenticate", 'Basic realm="maxcompute-exporter"')
        return Response(401, refusal.body, (*refusal.headers, challenge), True)

    async def _handle(self, request: Request) -> Response:
        if self.basic_auth.enabled and request.path not in OPEN_PATHS:
            refusal = await self._authorised(request)
            if refusal is not None:
                return self._for_method(request, refusal)
        if request.path == LIFECYCLE_PATH:
            # On the loop: a reload waits on the poll loop, never holding a worker thread.
            return await self._reload(request.method)
        # With basic auth on, /ready tells a stranger ready or not and reason codes, no more.
        detailed = request.path != "/ready" or await self._may_see_details(request)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._workers, self._route, request, detailed)
        return self._for_method(request, response)

    async def _may_see_details(self, request: Request) -> bool:
        if not self.basic_auth.enabled:
            return True
        return "authorization" in request.headers and await self._authorised(request) is None

    @staticmethod
    def _for_method(request: Request, response: Response) -> Response:
        if request.method != "HEAD":
            return response
        return Response(response.status, response.body, response.headers, response.close, True)

    def _route(self, request: Request, detailed: bool = True) -> Response:
        path, method = request.path, request.method
        if method not in ("GET", "HEAD"):
            return Response(405, (b"method not allowed\n",), (("Allow", "GET, HEAD"),))
        if path == self.telemetry_path:
            return self._metrics(request)
        if path == "/":
            report = self.report
            page = report.html() if report else self.landing
            return Response(200, (page,), (("Content-Type", "text/html; charset=utf-8"),))
        if path == "/healthz":
            return plain(200, "ok\n")
        if path == "/ready":
            if self.is_ready():
                return plain(200, "ready\n")
            if self.report:
                report = self.report
                return plain(503, report.not_ready() if detailed else report.not_ready_reasons())
            return plain(503, "not ready: a target has not had a good poll yet\n")
        return plain(404, "not found\n")

    def _metrics(self, request: Request) -> Response:
        gzipped = accepts_gzip(request.headers.get("accept-encoding"))
        exposition = self.exposition
        try:
            body = (exposition.render_gzip(),) if gzipped else exposition.render_parts()
        except Exception:
            log.exception("rendering metrics failed")
            return plain(500, "error rendering metrics\n")
        headers = [("Content-Type", EXPOSITION_CONTENT_TYPE), ("Vary", "Accept-Encoding")]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        return Response(200, tuple(body), tuple(headers))

    async def _reload(self, method: str) -> Response:
        # As Prometheus: 405 before 403, so a GET says how to ask even with the flag off.
        if method not in ("POST", "PUT"):
            return Response(
                405, (b"Only POST or PUT requests allowed\n",), (("Allow", "POST, PUT"),)
            )
        if not self.enable_lifecycle:
            return plain(403, LIFECYCLE_DISABLED)
        reload = self.reload
        if reload is None:
            return plain(503, "shutting down\n", close=True)
        try:
            async with asyncio.timeout(RELOAD_TIMEOUT_SECONDS):
                error = await reload()
        except TimeoutError:
            error = f"no answer within {RELOAD_TIMEOUT_SECONDS:g}s"
        if error is not None:
            return plain(500, f"failed to reload config: {error}\n")
        return plain(200, "configuration reloaded\n")
