"""Hostile clients, round two (issue 17): kept-alive probers filling every connection, password
guessers flooding the login cache, strangers reading /ready, an absurd bcrypt cost, reload
floods and an early SIGHUP. Real servers and clients on loopback."""

from __future__ import annotations

import asyncio
import base64
import signal
import socket
import threading
import time
from pathlib import Path

import bcrypt
import httpx

from exporter.reload_coalescing import CoalescedReloads
from exporter.web.basicauth import CACHE_SIZE
from exporter.web.server import ExporterHTTPServer
from exporter.web.status_page import StatusPage
from exporter.web.webconfig import MAX_BCRYPT_COST, WebConfig, load_web_config
from tests.integration.test_hostile_answers import HostileApi, Poller, raw
from tests.support.exporter_process import ExporterProcess, run_exporter
from tests.support.waiting import eventually
from tests.support.web_server import StaticExposition, running_server

PASSWORD = b"the-right-one"
RELOAD_LOGGED = 'msg="SIGHUP: reloading the configuration"'
HASH = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=4))
USERS = {"prometheus": HASH}


def basic(password: bytes) -> str:
    return "Basic " + base64.b64encode(b"prometheus:" + password).decode()


def request_with_password(password: bytes) -> bytes:
    return f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(password)}\r\n\r\n".encode()


class Holders:
    """``count`` clients, each keeping one connection alive with ``GET /healthz`` every
    ``every`` seconds, reconnecting when the server closes theirs."""

    def __init__(self, base: str, count: int, every: float) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.every = every
        self.served = 0
        self.reconnects = 0
        self.opened = threading.Barrier(count + 1)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]

    def __enter__(self) -> Holders:
        for thread in self._threads:
            thread.start()
        self.opened.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _probe(self, sock: socket.socket) -> bool:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")

    def _hold(self) -> None:
        sock = socket.create_connection(self.address, timeout=5)
        self._probe(sock)
        self.opened.wait(30)
        while not self._stop.wait(self.every):
            try:
                if self._probe(sock):
                    self.served += 1
                    continue
            except OSError:
                pass
            sock.close()
            self.reconnects += 1
            sock = socket.create_connection(self.address, timeout=5)
        sock.close()


def test_64_kept_alive_probers_never_keep_a_fresh_authorised_scrape_out() -> None:
    # The default --web.max-connections is 64: the probers take every connection.
    with (
        running_server(StaticExposition(), web_config=WebConfig(users=USERS)) as base,
        Holders(base, 64, every=0.5) as holders,
    ):
        statuses = []
        for _ in range(20):
            # A fresh connection each time, as Kubernetes' probes and a restarted Prometheus.
            answer = httpx.get(f"{base}/metrics", auth=("prometheus", PASSWORD.decode()))
            statuses.append(answer.status_code)
            time.sleep(0.05)
        assert statuses == [200] * 20
        # The probers are still served too: an evicted one reconnects and takes another's place.
        served = holders.served
        eventually("a prober served again", lambda: holders.served > served, timeout=20)


def test_a_scrapers_good_password_never_waits_behind_guessers(monkeypatch) -> None:
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        checked.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    stop = threading.Event()
    guesses: list[int] = []

    def guess(index: int) -> None:
        host, port = base.removeprefix("http://").split(":")
        n = 0
        while not stop.is_set():
            n += 1
            # Raw sockets: a new httpx client per guess would cost more CPU than the server.
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(request_with_password(f"guess-{index}-{n}".encode()))
                guesses.append(int(sock.recv(65536).split(b" ", 2)[1]))

    with running_server(StaticExposition(), web_config=WebConfig(users=USERS)) as base:
        scraper = httpx.Client(auth=("prometheus", PASSWORD.decode()))
        assert scraper.get(f"{base}/metrics").status_code == 200
        guessers = [threading.Thread(target=guess, args=(i,), daemon=True) for i in range(40)]
        for thread in guessers:
            thread.start()
        statuses = []
        deadline = time.monotonic() + 120
        # Past the wrong-password cache's size: the oldest wrong verdicts are being forgotten.
        while guesses.count(401) < CACHE_SIZE + 300 and time.monotonic() < deadline:
            statuses.append(scraper.get(f"{base}/metrics").status_code)
            time.sleep(0.05)
        stop.set()
        for thread in guessers:
            thread.join(10)
        scraper.close()
    assert guesses.count(401) >= CACHE_SIZE + 300 and 200 not in guesses
    assert len(statuses) > 10 and set(statuses) == {200}
    # The scraper's password went through bcrypt once, at its first scrape, never again.
    assert checked.count(PASSWORD) == 1


def test_ready_tells_strangers_ready_or_not_and_a_reason_code_only() -> None:
    api = HostileApi()
    huge = "Forbidden.RAM" + "x" * 4_000_000
    api.answer = lambda query: raw(
        f'{{"errorCode": "{huge}", "requestId": "{"r" * 100_000}", "httpCode": 403}}'.encode(),
        status="403 Forbidden",
    )
    stack = Poller(api.url)

    async def poll() -> bool:
        try:
            return await stack.poller.poll()
        finally:
            await stack.poller.aclose()

    try:
        assert asyncio.run(poll()) is False
    finally:
        api.close()
    # Cut where the error was made: what is stored and shown is small.
    failure = stack.store.status(stack.target).last_failure
    assert failure is not None and len(failure.message) < 1500
    assert "Forbidden.RAMxxx" in failure.message and "...[" in failure.message
    report = StatusPage(stack.store, 10.0)
    web = WebConfig(users=USERS)
    with running_server(
        StaticExposition(), web_config=web, report=report, is_ready=lambda: stack.store.ready
    ) as base:
        for auth in (None, ("prometheus", "wrong")):
            stranger = httpx.get(f"{base}/ready", auth=auth)
            assert (stranger.status_code, stranger.text) == (503, "not ready: auth\n")
        operator = httpx.get(f"{base}/ready", auth=("prometheus", PASSWORD.decode()))
        assert operator.status_code == 503
        assert operator.text.startswith("not ready:\n  cn-hangzhou: no good poll yet (last error")
        assert "errorCode=Forbidden.RAMxxx" in operator.text and len(operator.text) < 1500


def web_config_file(tmp_path: Path, hashed: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    return path


COST_31 = "$2y$31$" + "a" * 53
COST_LINE = (
    f"basic_auth_users.prometheus: expected a bcrypt cost of at most {MAX_BCRYPT_COST}"
    " (htpasswd -nbB -C 10), not 31"
)


def test_an_absurd_bcrypt_cost_is_refused_at_start_and_at_reload(tmp_path: Path) -> None:
    web = web_config_file(tmp_path, COST_31)
    result = run_exporter("--demo", "--web.config.file", str(web))
    assert (result.returncode, result.stderr) == (
        2,
        f"maxcompute-exporter: web config error: {COST_LINE}\n",
    )

    web = web_config_file(tmp_path, HASH.decode())
    process = ExporterProcess("--demo", "--web.config.file", str(web), "--web.enable-lifecycle")
    auth = ("prometheus", PASSWORD.decode())
    try:
        process.wait_until("/healthz")
        web_config_file(tmp_path, COST_31)
        answer = httpx.post(f"{process.base}/-/reload", auth=auth, timeout=10)
        assert (answer.status_code, answer.text) == (
            500,
            f"failed to reload config: web config: {COST_LINE}\n",
        )
        assert process.get("/metrics", auth=auth).status_code == 200
    finally:
        code, stderr = process.stop()
    assert code == 0 and "Traceback" not in stderr
    kept = 'msg="reloading the configuration failed: keeping the running one"'
    assert f'{kept} error="web config: {COST_LINE}"' in stderr


def test_concurrent_reloads_share_one_run() -> None:
    async def scenario() -> tuple[list[str | None], int]:
        gate = asyncio.Event()
        runs: list[int] = []

        async def reload() -> str | None:
            runs.append(1)
            await gate.wait()
            return None if len(runs) > 1 else "first"

        coalesced = CoalescedReloads(reload)
        first = asyncio.create_task(coalesced())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(runs) == 1
        # Arrived while the first reload runs (it read the files before them): one more run.
        later = [asyncio.create_task(coalesced()) for _ in range(10)]
        await asyncio.sleep(0)
        gate.set()
        answers = await asyncio.gather(first, *later)
        return answers, coalesced.runs

    answers, runs = asyncio.run(scenario())
    assert runs == 2
    assert answers == ["first"] + [None] * 10


def flood_reloads(base: str, seconds: float, clients: int = 16) -> list[int]:
    statuses: list[int] = []
    deadline = time.monotonic() + seconds

    def post() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                statuses.append(client.post(f"{base}/-/reload").status_code)

    threads = [threading.Thread(target=post) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def test_reload_floods_are_refused_by_default_and_coalesced_with_the_flag() -> None:
    process = ExporterProcess("--demo")
    try:
        process.wait_until("/ready")
        refused = flood_reloads(process.base, 2.0)
    finally:
        code, stderr = process.stop()
    assert len(refused) > 16 and set(refused) == {403}
    assert code == 0 and "reload" not in stderr

    process = ExporterProcess("--demo", "--web.enable-lifecycle")
    try:
        process.wait_until("/ready")
        answered = flood_reloads(process.base, 2.0)
    finally:
        code, stderr = process.stop()
    reloads = stderr.count('msg="configuration reloaded: unchanged"')
    assert set(answered) == {200} and code == 0
    # Sixteen clients at once: many requests shared a reload that another one queued (how many
    # depends on how fast the clients are scheduled against the reload; the exact rule is
    # tested on CoalescedReloads itself).
    assert 0 < reloads < len(answered) * 3 / 4, (reloads, len(answered))


def test_an_unchanged_web_config_keeps_the_login_cache(tmp_path: Path) -> None:
    path = web_config_file(tmp_path, HASH.decode())
    server = ExporterHTTPServer(
        ("127.0.0.1", 0), StaticExposition(), lambda: True, web_config=load_web_config(str(path))
    )
    try:
        header = basic(PASSWORD)
        assert server.basic_auth.check(header)
        before = server.basic_auth
        server.use_web_config(load_web_config(str(path)))
        assert server.basic_auth is before and server.basic_auth.cached(header) is True
        web_config_file(tmp_path, bcrypt.hashpw(b"new", bcrypt.gensalt(rounds=4)).decode())
        server.use_web_config(load_web_config(str(path)))
        assert server.basic_auth is not before and server.basic_auth.cached(header) is None
        assert server.basic_auth.check(header) is False
    finally:
        server.server_close()


def test_sighup_right_after_start_is_ignored_until_reloads_are_handled() -> None:
    process = ExporterProcess("--demo")
    try:
        time.sleep(0.2)
        # Through imports, the first config load and the listening socket: SIGHUP every 50 ms,
        # until one is handled (however long a busy machine takes to get there).
        deadline = time.monotonic() + 60
        while RELOAD_LOGGED not in process.log():
            assert process.process.poll() is None, process.log()
            assert time.monotonic() < deadline, f"no SIGHUP was handled: {process.log()}"
            process.process.send_signal(signal.SIGHUP)
            time.sleep(0.05)
        process.wait_until("/ready")
    finally:
        code, stderr = process.stop()
    assert code == 0, stderr[-2000:]
    assert RELOAD_LOGGED in stderr
