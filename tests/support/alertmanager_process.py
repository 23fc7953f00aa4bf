"""A real Alertmanager (Debian package ``prometheus-alertmanager``) on a free loopback port."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.exporter_process import stop_process
from tests.support.tools import free_port

# Debian names the server prometheus-alertmanager; upstream builds name it alertmanager.
BINARIES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = "install the Debian package prometheus-alertmanager (scripts/test.sh does)"


def amtool() -> str:
    path = shutil.which("amtool")
    assert path, f"amtool not found: {INSTALL_HINT}"
    return path


class Alertmanager:
    """Alertmanager with clustering off, serving ``config`` until ``stop()``."""

    def __init__(self, config: Path, workdir: Path) -> None:
        binary = next(filter(None, map(shutil.which, BINARIES)), None)
        assert binary, f"alertmanager not found: {INSTALL_HINT}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / "alertmanager.log"
        with self.log_file.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={workdir / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=self.url, timeout=5)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"alertmanager exited:\n{self.log_file.read_text()}")
            try:
                if self.client.get("/-/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"alertmanager not ready:\n{self.log_file.read_text()}")
            time.sleep(0.1)

    def alerts(self) -> list[dict[str, Any]]:
        response = self.client.get("/api/v2/alerts")
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process)
