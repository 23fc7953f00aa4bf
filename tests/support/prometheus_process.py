"""A real Prometheus server on loopback, scraping exporters (one, or an HA pair), and waiting."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.exporter_process import stop_process
from tests.support.tools import free_port

SCRAPE_JOB = "maxcompute-exporter"  # the rules select job="maxcompute-exporter"


class Prometheus:
    """A real ``prometheus`` server on a free loopback port, scraping one exporter or more."""

    def __init__(
        self,
        workdir: Path,
        exporter_address: str | Sequence[str],
        rules: Path,
        alertmanager_address: str | None = None,
        interval: str = "1s",
    ) -> None:
        binary = shutil.which("prometheus")
        if not binary:
            pytest.fail(
                "prometheus not found on PATH: install the Debian package 'prometheus' "
                "(scripts/test.sh does); these tests need a real Prometheus server"
            )
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": SCRAPE_JOB,
                    "metrics_path": "/metrics",
                    "static_configs": [
                        {
                            "targets": [exporter_address]
                            if isinstance(exporter_address, str)
                            else list(exporter_address)
                        }
                    ],
                }
            ],
        }
        if alertmanager_address:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]
            }
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_file = workdir / "prometheus.log"
        with self.log_file.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        errors = [line for line in text.splitlines() if "level=error" in line]
        tail = text.splitlines()[-lines:]
        return "\n".join([*errors, "...", *tail] if errors else tail)

    def check_running(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"prometheus exited with status {self.process.returncode}:\n{self.log_tail()}"
            )

    def api(self, path: str, params: Any = None) -> dict[str, Any]:
        """The JSON body of an API call; errors (HTTP 400/422/503) come back as bodies too."""
        response = self.client.get(path, params=params)
        try:
            return response.json()
        except ValueError:
            return {
                "status": "error",
                "errorType": f"HTTP {response.status_code}",
                "error": response.text[:500],
            }

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("/api/v1/query", {"query": expr})

    def query_range(self, expr: str, start: float, end: float, step: str) -> dict[str, Any]:
        return self.api(
            "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}
        )

    def stop(self, timeout: float = 10) -> None:
        self.client.close()
        stop_process(self.process, timeout)


def wait_for(
    what: str,
    condition: Callable[[], Any],
    timeout: float,
    alive: Callable[[], None],
    diagnostics: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``condition`` until it returns a true value; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        alive()
        try:
            last = condition()
            if last:
                return
        except httpx.TransportError as error:
            last = error
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})\n"
                f"{diagnostics()}"
            )
        time.sleep(0.2)


def result_of(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    body = prometheus.query(expr)
    return body["data"]["result"] if body.get("status") == "success" else []
