"""The simulators' HTTP server: a thread per request, quiet when a client hangs up."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer


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
