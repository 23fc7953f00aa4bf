"""A loopback API that answers with whatever bytes a test gives, and one target polling it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CollectorRegistry, generate_latest

from exporter.api.transport.client import RunningJobsClient
from exporter.config import Credentials, PollSettings, QuotaPollSettings, Target
from exporter.metrics.quota_metrics import QuotaCollector
from exporter.metrics.quota_poll_metrics import QuotaPollMetrics
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.publish.quota_snapshot import OPERATIONS, QuotaStore
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from exporter.polling.schedule.quota_poller import QuotaPoller
from tests.support.exposition import values
from tests.support.jobs import envelope, job_record

KEY = Credentials("LTAIhostile", "hostile-secret")
SETTINGS = PollSettings(interval=10.0, window=3600.0, timeout=2.0, retries=0, deadline=5.0)
Answer = Callable[[dict[str, str]], bytes | Iterable[bytes]]


def record(instance_id: str, submitted: int) -> dict:
    return job_record(
        instance_id, owner="o", project="p", quota="q", submitted=submitted, running=submitted
    )


def raw(body: bytes, status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def good(query: dict[str, str]) -> bytes:
    """One job, submitted at the start of whatever slice is asked for."""
    body = envelope([record("good-1", int(query["from"]))], 1)
    return raw(json.dumps(body).encode())


class HostileApi:
    """A loopback server that answers every request with ``answer(query)``, bytes as they are.

    An answer that is an iterable of byte strings is sent part by part, ``gap`` seconds apart
    (a trickle, or a body too large to hold); each connection is served on its own thread.
    """

    def __init__(self) -> None:
        self.answer: Answer = good
        # If set, answers instead of ``answer``, told the request's path too.
        self.route: Callable[[str, dict[str, str]], bytes | Iterable[bytes]] | None = None
        self.gap = 0.0
        self.requests = 0
        self.paths: list[str] = []  # each request's path, in the order they came
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                head += chunk
            target = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "/"
            self.requests += 1
            url = urlsplit(target)
            self.paths.append(url.path)
            query = dict(parse_qsl(url.query))
            answer = self.route(url.path, query) if self.route else self.answer(query)
            parts = [answer] if isinstance(answer, bytes) else answer
            with contextlib.suppress(OSError):  # the client may hang up first
                for number, part in enumerate(parts):
                    if number and self.gap:
                        time.sleep(self.gap)
                    connection.sendall(part)

    def close(self) -> None:
        self._listener.close()


class Poller:
    """One target's poller, store and metrics in process, against ``url``."""

    def __init__(self, url: str, settings: PollSettings = SETTINGS) -> None:
        self.target = Target(region="cn-hangzhou", endpoint=url, credentials=KEY)
        self.store = SnapshotStore((self.target,))
        self.metrics = ExporterMetrics(self.store, (self.target,), (), 10.0, process_metrics=False)
        self.poller = TargetPoller(self.target, settings, self.store, self.metrics.polls)

    def errors(self) -> dict[str, float]:
        """``poll_errors_total`` by reason, those above 0."""
        return self._counts("maxcompute_exporter_poll_errors_total", "reason")

    def requests(self) -> dict[str, float]:
        """``api_requests_total`` by code, those above 0."""
        return self._counts("maxcompute_exporter_api_requests_total", "code")

    def _counts(self, name: str, label: str) -> dict[str, float]:
        counts = {}
        for family in self.metrics.self_registry.collect():
            for sample in family.samples:
                if sample.name == name and sample.value:
                    counts[sample.labels[label]] = sample.value
        return counts


class QuotaPolls:
    """One target's quota poller, store and metrics in process, against ``url``."""

    def __init__(
        self,
        url: str,
        settings: PollSettings = SETTINGS,
        *,
        max_quotas: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = Target(region="cn-hangzhou", endpoint=url, credentials=KEY)
        self.store = QuotaStore((self.target,))
        self.registry = CollectorRegistry()
        observer = QuotaPollMetrics(self.registry, [self.target], (), list(OPERATIONS))
        self.registry.register(QuotaCollector(self.store, (), QuotaPollSettings(), clock))
        self.client = RunningJobsClient(self.target, settings)
        self.poller = QuotaPoller(
            self.target,
            self.client,
            QuotaPollSettings(),
            self.store,
            observer,
            clock=clock,
            max_quotas=max_quotas,
        )

    def run(self, *polls: str) -> list[bool]:
        """Each of ``polls`` ("quotas" or "usage") in turn, then the client closed."""

        async def run() -> list[bool]:
            try:
                return [
                    await (self.poller.poll_quotas() if p == "quotas" else self.poller.poll_usage())
                    for p in polls
                ]
            finally:
                await self.client.aclose()

        return asyncio.run(run())

    def metrics(self) -> dict[tuple, float]:
        """Every sample as ``values`` gives it."""
        return values(generate_latest(self.registry).decode())
