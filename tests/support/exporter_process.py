"""Run the exporter as a real subprocess on loopback, the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys
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

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.base + path, timeout=5, **kwargs)

    def wait_until(self, path: str, status: int = 200, timeout: float = 20) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited: {self.process.stderr.read()}")
            try:
                response = self.get(path)
                if response.status_code == status:
                    return response
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} never answered {status}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> tuple[int, str]:
        stop_process(self.process, timeout)
        return self.process.returncode, self.process.stderr.read()


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
