"""Hostile clients under load, bounded in count and time, on loopback: 1 000 half-open
connections and 100 clients guessing passwords while a scraper scrapes every 100 ms."""

from __future__ import annotations

import asyncio
import base64
import math
import resource
import secrets
import sys
import threading
import time
from pathlib import Path

import bcrypt
import httpx

from tests.support.exporter_process import ExporterProcess

HALF_OPEN = 1000
GUESSERS = 100
SCRAPES = 100
SCRAPE_EVERY = 0.1
PASSWORD = "the-right-one"
# Each guesser waits this long after an answer: 100 of them still ask up to 2 000 times a second.
GUESS_PAUSE = 0.05


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


class Attack:
    """Half-open connections and password guessers, on an event loop in a thread of its own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened = threading.Event()
        self.answers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    async def _half_open(self) -> list[asyncio.StreamWriter]:
        writers = []
        for index in range(HALF_OPEN):
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            if index % 2:
                writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            writers.append(writer)
        return writers

    async def _guess(self) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                guess = secrets.token_hex(8)
                auth = basic_auth_header("prometheus", guess)
                writer.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n".encode())
                status_line = await asyncio.wait_for(reader.readline(), 30)
                status = int(status_line.split()[1]) if status_line else 0
                self.answers[status] = self.answers.get(status, 0) + 1
                writer.close()
            except (TimeoutError, OSError, ValueError, IndexError):
                self.answers[-1] = self.answers.get(-1, 0) + 1
            await asyncio.sleep(GUESS_PAUSE)

    async def _run(self) -> None:
        writers = await self._half_open()
        self.opened.set()
        guessers = [asyncio.create_task(self._guess()) for _ in range(GUESSERS)]
        while not self._stop.is_set():
            await asyncio.sleep(0.05)
        await asyncio.gather(*guessers)
        for writer in writers:
            writer.transport.abort()


def basic_auth_header(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_scrapes_stay_fast_under_half_open_connections_and_password_guessing(
    tmp_path: Path,
) -> None:
    raise_file_limit(HALF_OPEN + GUESSERS + 512)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    process = ExporterProcess("--demo", "--web.config.file", str(web))
    attack = Attack(process.port)
    latencies: list[float] = []
    statuses: list[int] = []
    try:
        process.wait_until("/healthz")
        with httpx.Client(auth=("prometheus", PASSWORD), timeout=10) as scraper:
            # Prometheus was scraping before the attack began: its credentials are cached.
            assert scraper.get(f"{process.base}/metrics").status_code == 200
            attack.start()
            assert attack.opened.wait(60), "the half-open connections were not all opened"
            for _ in range(SCRAPES):
                started = time.monotonic()
                statuses.append(scraper.get(f"{process.base}/metrics").status_code)
                latencies.append(time.monotonic() - started)
                time.sleep(max(0.0, SCRAPE_EVERY - latencies[-1]))
    finally:
        attack.stop()
        code, stderr = process.stop()
    assert statuses == [200] * SCRAPES
    p99 = sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1]
    assert p99 < 0.25, f"p99 {p99:.3f}s; answers to guessers {attack.answers}"
    # The guessers were answered (401, or 503 while bcrypt's queue was full), never let in.
    assert attack.answers.get(401, 0) > 0 and attack.answers.get(200, 0) == 0
    assert code == 0 and "Traceback" not in stderr, stderr[-2000:]
    p50 = sorted(latencies)[len(latencies) // 2]
    print(f"p50 {p50:.4f}s p99 {p99:.4f}s; guessers' answers {attack.answers}", file=sys.stderr)
