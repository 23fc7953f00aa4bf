"""A local stand-in for MaxCompute's GetRunningJobs, behaving as the service does.

It checks the ACS3-HMAC-SHA256 signature the way the service does (same canonical form, known
AccessKeys, STS tokens, clock skew, nonce reuse), filters by the closed submission-time interval,
owners and quotas, pages at most 20 jobs, and can inject latency, throttling, 5xx, dropped
connections and malformed records. Used by the tests, the benchmarks and ``--demo``.

Run on its own::

    python -m exporter.demo.simulator --listen 127.0.0.1:18080 --demo-jobs 300
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from exporter.api.signing import ALGORITHM, signature
from exporter.api.wire import (
    ACTION,
    API_VERSION,
    DATE_FORMAT,
    EMPTY_PAYLOAD_SHA256,
    PAGE_SIZE,
    PATH,
)
from exporter.demo.threading_server import QuietThreadingHTTPServer

DEMO_ACCESS_KEY_ID = "LTAI-simulator-demo"
DEMO_ACCESS_KEY_SECRET = "simulator-demo-secret"
MAX_CLOCK_SKEW_SECONDS = 900

JobSource = Callable[[float], Sequence[dict]]


@dataclass(frozen=True, slots=True)
class Faults:
    """What the simulator does wrong, each as a probability per request (0..1)."""

    latency: float = 0.0  # seconds added to every response
    throttle: float = 0.0  # HTTP 429 Throttling.User
    server_error: float = 0.0  # HTTP 503 ServiceUnavailable
    disconnect: float = 0.0  # connection closed with no response
    malformed: float = 0.0  # per job record: a field is broken
    seed: int | None = None


@dataclass
class SimulatorState:
    jobs: JobSource
    credentials: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # STS credentials' expiry (Unix seconds) by AccessKeyId; see exporter/sts_simulator.py.
    expirations: dict[str, float] = field(default_factory=dict)
    expired_token_requests: int = 0
    faults: Faults = Faults()
    clock: Callable[[], float] = time.time
    requests: int = 0
    # Recently used nonces, as the service refuses a replayed request.
    nonces: OrderedDict[str, None] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)
    # The filtered list of the last query, reused by its other pages within the same second.
    cache_key: tuple | None = None
    cache_value: list[dict] = field(default_factory=list)
    cache_listing: object = None
    limit: TokenBucket | None = None
    throttled: int = 0

    def matching(
        self, window_start: int, window_end: int, owners: frozenset, quotas: frozenset
    ) -> list[dict]:
        """Jobs submitted in [window_start, window_end] (closed) that pass the filters."""
        listing = self.jobs(self.clock())
        # A source returns the same list object until its jobs change: filter it once per change.
        key = (window_start, window_end, owners, quotas, id(listing))
        with self.lock:
            if key == self.cache_key and self.cache_listing is listing:
                return self.cache_value
        matching = []
        if window_start < window_end:
            for job in listing:
                submitted = job.get("submittedAtTime")
                timed = isinstance(submitted, int) and not isinstance(submitted, bool)
                if timed and not window_start <= submitted <= window_end:
                    continue
                if owners and job.get("jobOwner") not in owners:
                    continue
                if quotas and job.get("quotaNickname") not in quotas:
                    continue
                matching.append(job)
        with self.lock:
            self.cache_key, self.cache_value, self.cache_listing = key, matching, listing
        return matching


class TokenBucket:
    """The service's own request limit: ``rate`` a second, bursts of one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = rate
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True if a request may pass now; False if it is over the limit."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def error_body(code: str, message: str, http_code: int) -> dict:
    return {
        "requestId": uuid.uuid4().hex[:30],
        "httpCode": http_code,
        "errorCode": code,
        "errorMsg": message,
    }


def break_record(record: dict, rng: random.Random) -> dict:
    """A copy of ``record`` with one field missing, null or of the wrong type."""
    broken = dict(record)
    key = rng.choice(
        ["instanceId", "project", "quotaNickname", "cuSnapshot", "submittedAtTime", "progress"]
    )
    damage = rng.choice(["missing", "null", "string", "list"])
    if damage == "missing":
        broken.pop(key, None)
    elif damage == "null":
        broken[key] = None
    elif damage == "string":
        broken[key] = "not-a-number" if key not in ("instanceId", "project") else 12345
    else:
        broken[key] = []
    return broken


class SimulatorHandler(BaseHTTPRequestHandler):
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
        if state.limit is not None and not state.limit.take():
            with state.lock:
                state.throttled += 1
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
        parts = urlsplit(self.path)
        if parts.path != PATH:
            self._fail(404, "InvalidAction.NotFound", "Specified api is not found.")
            return
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        problem = self._check_signature(state, parts.path, query)
        if problem is not None:
            self._fail(*problem)
            return
        self._running_jobs(state, query)

    def _check_signature(
        self, state: SimulatorState, path: str, query: dict[str, str]
    ) -> tuple[int, str, str] | None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        if headers.get("x-acs-action") != ACTION:
            return 400, "MissingAction", f"x-acs-action must be {ACTION}."
        if headers.get("x-acs-version") != API_VERSION:
            return 400, "InvalidVersion", f"x-acs-version must be {API_VERSION}."
        auth = headers.get("authorization", "")
        if not auth.startswith(ALGORITHM + " "):
            return 400, "IncompleteSignature", "The request signature is missing or malformed."
        fields = dict(
            item.split("=", 1) for item in auth[len(ALGORITHM) + 1 :].split(",") if "=" in item
        )
        key_id = fields.get("Credential", "")
        signed_names = fields.get("SignedHeaders", "").split(";")
        if key_id not in state.credentials:
            return 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        secret, token = state.credentials[key_id]
        required = {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
        if token is not None:
            required.add("x-acs-security-token")
        if not required <= set(signed_names) or any(n not in headers for n in signed_names):
            return 400, "IncompleteSignature", "A required header is not signed."
        if token is not None and headers["x-acs-security-token"] != token:
            return 400, "InvalidSecurityToken.Mismatch", "The security token does not match."
        if state.clock() >= state.expirations.get(key_id, float("inf")):
            with state.lock:
                state.expired_token_requests += 1
            return 400, "InvalidSecurityToken.Expired", "The security token has expired."
        if headers["x-acs-content-sha256"] != EMPTY_PAYLOAD_SHA256:
            return 400, "SignatureDoesNotMatch", "The payload hash does not match."
        try:
            sent_at = calendar.timegm(time.strptime(headers["x-acs-date"], DATE_FORMAT))
        except ValueError:
            return 400, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601 UTC."
        if abs(sent_at - state.clock()) > MAX_CLOCK_SKEW_SECONDS:
            return 400, "InvalidTimeStamp.Expired", "The request time is too far from now."
        _, expected = signature(
            secret, "GET", path, query, {name: headers[name] for name in signed_names}
        )
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            return 400, "SignatureDoesNotMatch", "The request signature does not conform."
        nonce = headers["x-acs-signature-nonce"]
        with state.lock:
            if nonce in state.nonces:
                return 400, "SignatureNonceUsed", "The signature nonce has been used."
            state.nonces[nonce] = None
            while len(state.nonces) > 100_000:
                state.nonces.popitem(last=False)
        return None

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
        matching = state.matching(window_start, window_end, owners, quotas)
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
        faults: Faults = Faults(),
        clock: Callable[[], float] = time.time,
        address: tuple[str, int] = ("127.0.0.1", 0),
        rate_limit: float | None = None,
    ) -> None:
        fixed = None if callable(jobs) else list(jobs)
        source = jobs if fixed is None else (lambda now: fixed)
        self.state = SimulatorState(
            jobs=source,
            credentials=credentials or {DEMO_ACCESS_KEY_ID: (DEMO_ACCESS_KEY_SECRET, None)},
            faults=faults,
            clock=clock,
            rng=random.Random(faults.seed),
            limit=TokenBucket(rate_limit) if rate_limit else None,
        )
        super().__init__(address, SimulatorHandler)
        self._thread: threading.Thread | None = None

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
        self.shutdown()
        self.server_close()


# --- Demo workload: jobs that start, progress and finish as time passes ---------------------

DEMO_QUOTAS = ("etl_quota", "adhoc_quota", "ml_quota")
DEMO_PROJECTS = ("sales_dw", "ads_report", "user_profile", "risk_model", "ops_audit")
DEMO_OWNERS = ("ALIYUN$ops@example.com", "RAM$etl:robot", "RAM$analyst:alice")


@dataclass(frozen=True, slots=True)
class DemoJob:
    instance_id: str
    owner: str
    project: str
    quota: str
    submitted_at: int
    queue: int
    duration: int
    cu: float
    memory: float
    stuck: bool


def demo_workload(jobs_running: int = 120, seed: int = 7, period: int = 3600) -> JobSource:
    """A repeating, deterministic workload with about ``jobs_running`` jobs running at once.

    Every job is fully determined by its slot and cycle, so any two requests at the same time
    agree; as time passes jobs progress, finish and are replaced.
    """
    rng = random.Random(seed)
    slots = []
    for slot in range(jobs_running):
        quota = DEMO_QUOTAS[slot % len(DEMO_QUOTAS)]
        project = DEMO_PROJECTS[(slot * 7 + slot // 3) % len(DEMO_PROJECTS)]
        slots.append(
            (
                slot,
                quota,
                project,
                DEMO_OWNERS[slot % len(DEMO_OWNERS)],
                rng.randint(300, period),  # run time
                rng.randint(0, 900),  # queue time
                rng.random(),
                slot % 17 == 0,  # a few jobs never make progress
            )
        )
    per_quota = {q: sum(1 for s in slots if s[1] == q) for q in DEMO_QUOTAS}
    saturation = {"etl_quota": 0.85, "adhoc_quota": 0.45, "ml_quota": 0.65}

    def jobs_at(now: float) -> list[dict]:
        records = []
        for slot, quota, project, owner, duration, queue, phase, stuck in slots:
            cycle_length = duration + queue
            offset = int(phase * cycle_length)
            cycle, position = divmod(int(now) + offset, cycle_length)
            submitted = int(now) - position
            started = submitted + queue
            if now < started:
                continue  # still queued: not running yet
            share = saturation[quota] / per_quota[quota]
            wobble = 0.8 + 0.4 * ((cycle * 31 + slot) % 10) / 10
            progress = 0.0 if stuck else round(min(1.0, (now - started) / duration), 3)
            records.append(
                {
                    "instanceId": f"{time.strftime('%Y%m%d', time.gmtime(submitted))}"
                    f"{slot:05d}{cycle:08d}demo",
                    "jobOwner": owner,
                    "project": project,
                    "quotaNickname": quota,
                    "cuSnapshot": round(share * wobble, 4),
                    "memorySnapshot": round(share * wobble * 0.9, 4),
                    "submittedAtTime": submitted,
                    "runningAtTime": started,
                    "progress": progress,
                }
            )
        records.sort(key=lambda r: (r["submittedAtTime"], r["instanceId"]))
        return records

    return jobs_at


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local GetRunningJobs simulator.")
    parser.add_argument("--listen", default="127.0.0.1:18080", help="host:port")
    parser.add_argument("--jobs", help="JSON file with a list of job records to serve")
    parser.add_argument(
        "--demo-jobs", type=int, default=120, help="background jobs of the phased demo workload"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per response")
    parser.add_argument("--throttle", type=float, default=0.0)
    parser.add_argument("--server-error", type=float, default=0.0)
    parser.add_argument("--disconnect", type=float, default=0.0)
    parser.add_argument("--malformed", type=float, default=0.0)
    parser.add_argument("--access-key-id", default=DEMO_ACCESS_KEY_ID)
    parser.add_argument("--access-key-secret", default=DEMO_ACCESS_KEY_SECRET)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if args.jobs:
        with open(args.jobs, encoding="utf-8") as handle:
            jobs: JobSource | list[dict] = json.load(handle)
    else:
        # Imported here: the demo workload is built on this module.
        from exporter.demo.workload import phased_workload

        jobs = phased_workload(time.time(), jobs_per_quota=max(1, args.demo_jobs // 3))
    faults = replace(
        Faults(),
        latency=args.latency,
        throttle=args.throttle,
        server_error=args.server_error,
        disconnect=args.disconnect,
        malformed=args.malformed,
    )
    simulator = ApiSimulator(
        jobs,
        credentials={args.access_key_id: (args.access_key_secret, None)},
        faults=faults,
        address=(host or "127.0.0.1", int(port)),
    )
    print(f"GetRunningJobs simulator on {simulator.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        simulator.serve_forever()


if __name__ == "__main__":
    main()
