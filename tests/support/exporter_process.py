"""Run the exporter as a real subprocess on loopback, the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx

from tests.support.tools import ROOT, free_port


def exporter_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exporter", *args]


def run_exporter(
    *args: str, env: dict | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    return subprocess.run(
        exporter_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


class ExporterProcess:
    """``maxcompute-exporter`` listening on a free loopback port."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            exporter_command("--web.listen-address", f"127.0.0.1:{self.port}", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        # Drained as it comes: a pipe nobody reads fills at 64 KiB of log lines (a debug level
        # gets there in seconds) and then blocks the exporter mid-write, SIGTERM and all.
        self._log: list[str] = []
        self._drain = threading.Thread(target=self._read_log, daemon=True)
        self._drain.start()

    def _read_log(self) -> None:
        for line in self.process.stderr:
            self._log.append(line)

    def log(self) -> str:
        """Its stderr so far; all of it once the process has exited."""
        if self.process.poll() is not None:
            self._drain.join(5)
        return "".join(self._log)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.base + path, timeout=5, **kwargs)

    def wait_until(self, path: str, status: int = 200, timeout: float = 60) -> httpx.Response:
        """The first answer of ``path`` with ``status``. The timeout only bounds a failure: on a
        busy machine a start and a first poll can take many times their quiet duration."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited: {self.log()}")
            try:
                response = self.get(path)
                if response.status_code == status:
                    return response
                last = f"{response.status_code} {response.text[:500]}"
            except httpx.TransportError as error:
                last = repr(error)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{path} never answered {status} in {timeout:g} s (last: {last})\n"
                    f"exporter log:\n{self.log()[-3000:]}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> tuple[int, str]:
        stop_process(self.process, timeout)
        return self.process.returncode, self.log()


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
