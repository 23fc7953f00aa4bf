"""A local stand-in for MaxCompute's GetRunningJobs, behaving as the service does.

It checks the ACS3-HMAC-SHA256 signature the way the service does (same canonical form, known
AccessKeys, STS tokens, clock skew, nonce reuse), filters by the closed submission-time interval,
owners and quotas, pages at most 20 jobs, and can inject latency, throttling, 5xx, dropped
connections and malformed records. Used by the tests, the benchmarks and ``--demo``.

Run on its own::

    python -m exporter.demo --listen 127.0.0.1:18080 --demo-jobs 300
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from exporter.api.wire.quota_usage import USAGE_ACTION
from exporter.api.wire.running_jobs import ACTION, PAGE_SIZE, PATH
from exporter.demo.quota_simulator import QuotaCatalog, answer_quota_request, quota_action
from exporter.demo.signature_check import signature_problem
from exporter.demo.simulator_state import (
    NO_FAULTS,
    Faults,
    JobSource,
    SimulatorState,
    TokenBucket,
    break_record,
    error_body,
    shuffled_within_seconds,
)
from exporter.demo.threading_server import QuietThreadingHTTPServer

DEMO_ACCESS_KEY_ID = "LTAI-simulator-demo"
DEMO_ACCESS_KEY_SECRET = "simulator-demo-secret"


class SimulatorHandler(BaseHTTPRequestHandler):
    """Answers one GetRunningJobs request as the service would, faults included."""

    server: ApiSimulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the exporter's server: no delayed-ACK stall per reply

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict, extra_headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _fail(self, status: int, code: str, message: str) -> None:
        self._reply(status, error_body(code, message, status))

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests += 1
            faults = state.faults
            roll = state.rng.random()
        if faults.latency:
            time.sleep(faults.latency)
        parts = urlsplit(self.path)
        action = ACTION if parts.path == PATH else quota_action(parts.path)
        if state.limit is not None and not state.limit.take():
            with state.lock:
                state.throttled += 1
                state.throttled_actions[action or parts.path] += 1
            self._fail(429, "Throttling.User", "Request was denied due to user flow control.")
            return
        if roll < faults.disconnect:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        roll -= faults.disconnect
        if roll < faults.throttle:
            self._reply(
                429,
                error_body("Throttling.User", "Request was denied due to user flow control.", 429),
                {"Retry-After": "1"},
            )
            return
        roll -= faults.throttle
        if roll < faults.server_error:
            self._fail(
                503, "ServiceUnavailable", "The request has failed due to a temporary failure."
            )
            return
        if action is None or (action != ACTION and self.server.quotas is None):
            self._fail(404, "InvalidAction.NotFound", "Specified api is not found.")
            return
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        problem = signature_problem(state, headers, parts.path, query, action)
        if problem is not None:
            self._fail(*problem)
            return
        if action == ACTION:
            self._running_jobs(state, query)
        elif action == USAGE_ACTION and self.server.quotas.usage_fault == "hang":
            self.server.stopping.wait()  # no answer until the simulator stops
        else:
            self._reply(*answer_quota_request(self.server.quotas, state, action, parts.path, query))

    def _running_jobs(self, state: SimulatorState, query: dict[str, str]) -> None:
        try:
            window_start = int(query["from"])
            window_end = int(query["to"])
        except (KeyError, ValueError):
            self._fail(400, "InvalidParameter", "from and to are required Unix seconds.")
            return
        try:
            page_number = int(query.get("pageNumber", "1"))
            page_size = int(query.get("pageSize", "10"))
        except ValueError:
            self._fail(400, "InvalidParameter", "pageNumber and pageSize must be integers.")
            return
        if page_number < 1 or not 1 <= page_size <= PAGE_SIZE:
            self._fail(400, "InvalidParameter", "pageSize must be 1..20, pageNumber >= 1.")
            return
        owners = frozenset(filter(None, query.get("jobOwnerList", "").split(",")))
        quotas = frozenset(filter(None, query.get("quotaNicknameList", "").split(",")))
        if state.faults.ignores_filters:
            owners = quotas = frozenset()
        matching = state.matching(window_start, window_end, owners, quotas)
        if state.faults.unstable_order:
            with state.lock:
                matching = shuffled_within_seconds(matching, state.rng)
        page = matching[(page_number - 1) * page_size : page_number * page_size]
        if state.faults.malformed:
            with state.lock:
                page = [
                    break_record(job, state.rng)
                    if state.rng.random() < state.faults.malformed
                    else job
                    for job in page
                ]
        body = {
            "requestId": uuid.uuid4().hex[:30],
            "httpCode": 200,
            "errorCode": "success",
            "errorMsg": "",
            "data": {
                "runningJobInfoList": page,
                "totalCount": len(matching),
                "pageNumber": page_number,
                "pageSize": page_size,
            },
        }
        self._reply(200, body)


class ApiSimulator(QuietThreadingHTTPServer):
    """The simulator's HTTP server; ``url`` is its endpoint for a target's ``endpoint:``."""

    def __init__(
        self,
        jobs: JobSource | Sequence[dict],
        *,
        credentials: dict[str, tuple[str, str | None]] | None = None,
        faults: Faults = NO_FAULTS,
        clock: Callable[[], float] = time.time,
        address: tuple[str, int] = ("127.0.0.1", 0),
        rate_limit: float | None = None,
        rate_burst: float | None = None,
        quotas: QuotaCatalog | None = None,
    ) -> None:
        # The tenant's quotas for ListQuotas and GetQuotaUsage (None: those paths answer 404).
        self.quotas = quotas
        fixed = None if callable(jobs) else list(jobs)
        source = jobs if fixed is None else (lambda now: fixed)
        self.state = SimulatorState(
            jobs=source,
            credentials=credentials or {DEMO_ACCESS_KEY_ID: (DEMO_ACCESS_KEY_SECRET, None)},
            faults=faults,
            clock=clock,
            rng=random.Random(faults.seed),
            limit=TokenBucket(rate_limit, burst=rate_burst) if rate_limit else None,
        )
        super().__init__(address, SimulatorHandler)
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def set_jobs(self, jobs: JobSource | Sequence[dict]) -> None:
        with self.state.lock:
            fixed = None if callable(jobs) else list(jobs)
            self.state.jobs = jobs if fixed is None else (lambda now: fixed)
            self.state.cache_key = None

    def set_faults(self, faults: Faults) -> None:
        with self.state.lock:
            self.state.faults = faults
            if faults.seed is not None:
                self.state.rng.seed(faults.seed)

    def start(self) -> ApiSimulator:
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
