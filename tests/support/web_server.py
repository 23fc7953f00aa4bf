"""The exporter's HTTP server on a free loopback port, serving a fixed exposition."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator

from exporter.web.httpserver import ServerLimits
from exporter.web.server import ExporterHTTPServer
from exporter.web.webconfig import WebConfig

BODY = b"# HELP up Up.\n# TYPE up gauge\nup 1.0\n"


class StaticExposition:
    """An exposition that is always ``BODY``."""

    def render_parts(self) -> tuple[bytes, ...]:
        return (BODY,)

    def render_gzip(self) -> bytes:
        return gzip.compress(BODY)


@contextlib.contextmanager
def running_server(
    exposition: object,
    *,
    web_config: WebConfig | None = None,
    limits: ServerLimits | None = None,
    ready: bool = True,
    reload=None,
    enable_lifecycle: bool = False,
    report=None,
    is_ready=None,
) -> Iterator[str]:
    server = ExporterHTTPServer(
        ("127.0.0.1", 0),
        exposition,
        is_ready or (lambda: ready),
        web_config=web_config,
        limits=limits,
        reload=reload,
        enable_lifecycle=enable_lifecycle,
        report=report,
    )
    server.serve_in_thread()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
