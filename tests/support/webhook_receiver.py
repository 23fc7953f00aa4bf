"""An Alertmanager webhook receiver on a free loopback port: every notification, as it arrived."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook call: when it arrived (wall time) and its JSON body."""

    received_at: float
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return self.body["status"]

    def alerts(self, status: str) -> list[dict[str, Any]]:
        """The notification's alerts in ``status`` ("firing" or "resolved")."""
        return [alert for alert in self.body["alerts"] if alert["status"] == status]


class WebhookReceiver:
    """Records what Alertmanager sends to ``url`` until ``stop()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver._received.append(Notification(time.time(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
