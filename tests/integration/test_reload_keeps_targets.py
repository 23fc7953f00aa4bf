"""A reload that changes one target of fifty leaves the other forty-nine as they were: up, their
series served by every scrape, ready, their learned request rate kept (issue 23, row 8: all 50
went down, /ready 503 for 5.7 s, every rate back at 50/s). Through ``python -m exporter`` and
the simulator on loopback."""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from exporter.demo.simulator import ApiSimulator, Faults
from tests.integration.test_integration import ENV, KEY_ID, SECRET, record
from tests.support.exporter_process import ExporterProcess

TARGETS = 50
KEPT = {str(n) for n in range(TARGETS - 1)}
SERIES = re.compile(r'^(maxcompute_\w+)\{n="(\w+)",.*\} (\S+)$')


def fleet(simulator: ApiSimulator, last_label: str) -> str:
    """Fifty targets, each reading its own quota's job; the last one labelled ``last_label``."""
    lines = ["targets:"]
    for n in range(TARGETS):
        label = last_label if n == TARGETS - 1 else str(n)
        lines.append(
            f"  - {{region: cn-hangzhou, endpoint: '{simulator.url}', labels: {{n: '{label}'}},"
            f" quotas: [q{n}]}}"
        )
    # Polls an hour apart: the only polls are the first at start and those the reload starts.
    lines.append("poll: {interval: 1h, window: 1d, retries: 10, retry_backoff: 100ms}")
    lines.append("quota_poll: {quotas: false, usage: false}")
    return "\n".join(lines) + "\n"


def by_target(text: str) -> dict[str, dict[str, float]]:
    """Per ``n`` label, each job-level family's value (the last sample of the family)."""
    seen: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if match := SERIES.match(line):
            family, n, value = match.groups()
            seen.setdefault(n, {})[family] = float(value)
    return seen


class Watch:
    """Scrapes ``/metrics`` and ``/ready`` back to back, on a thread, until stopped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.scrapes: list[dict[str, dict[str, float]]] = []
        self.ready: list[tuple[int, str]] = []
        self.unready_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._stop.is_set():
                self.scrapes.append(by_target(client.get("/metrics").text))
                ready = client.get("/ready")
                self.ready.append((ready.status_code, ready.text))
                if ready.status_code != 200:
                    self.unready_at.append(time.monotonic())


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def test_a_reload_changing_one_target_of_fifty_leaves_the_others_as_they_were(
    tmp_path: Path,
) -> None:
    jobs = [record(f"job-{n}", "sales", f"q{n}", 0.1, 0.1, 0.5, 30, 60) for n in range(TARGETS)]
    # Throttled now and then at first, so the targets learn rates of their own (below 50/s).
    sim = ApiSimulator(
        jobs, credentials={KEY_ID: (SECRET, None)}, faults=Faults(throttle=0.3, seed=23)
    ).start()
    path = tmp_path / "config.yml"
    path.write_text(fleet(sim, "49"))
    process = ExporterProcess("--config", str(path), env=ENV)
    try:
        process.wait_until("/ready", timeout=120)
        before = by_target(process.get("/metrics").text)
        rates = {n: before[n]["maxcompute_exporter_request_rate"] for n in KEPT}
        assert sum(rate < 50 for rate in rates.values()) >= 3, rates
        sim.set_faults(Faults())
        with Watch(process.base) as watch:
            wait_for(lambda: len(watch.scrapes) >= 3, "scrapes before the reload")
            requests_before = sim.state.requests
            path.write_text(fleet(sim, "49b"))
            process.process.send_signal(signal.SIGHUP)
            wait_for(
                lambda: watch.scrapes and watch.scrapes[-1].get("49b", {}).get("maxcompute_up"),
                "the changed target up",
            )
            wait_for(lambda: watch.ready and watch.ready[-1][0] == 200, "/ready 200 again")
            seen = len(watch.scrapes)
            wait_for(lambda: len(watch.scrapes) >= seen + 3, "scrapes after the reload")
        after = by_target(process.get("/metrics").text)
        requests_since = sim.state.requests - requests_before
    finally:
        code, stderr = process.stop()
        sim.stop()
    assert code == 0 and "Traceback" not in stderr
    assert stderr.count('msg="configuration reloaded" targets=50') == 1
    # No scrape, before, during or after the reload, missed an unchanged target or its series.
    assert len(watch.scrapes) >= 5
    for scrape in watch.scrapes:
        for n in KEPT:
            assert scrape[n]["maxcompute_up"] == 1.0, (n, scrape.get(n))
            assert scrape[n]["maxcompute_running_jobs"] == 1.0, (n, scrape.get(n))
            assert scrape[n]["maxcompute_jobs_started_total"] == 0.0, (n, scrape.get(n))
    # /ready: 200, or 503 naming the changed target alone (no good poll of it yet).
    for status, text in watch.ready:
        assert status == 200 or text == (
            "not ready:\n  cn-hangzhou{n=49b}: no good poll yet (first poll not finished)\n"
        ), text
    unready = watch.unready_at[-1] - watch.unready_at[0] if watch.unready_at else 0.0
    print(
        f"{len(watch.scrapes)} scrapes, 49 of 49 unchanged targets up in each; /ready 503 "
        f"{len(watch.unready_at)} times over {unready:.3f}s (the changed target's first poll)",
        file=sys.stderr,
    )
    # The learned rates went on as they were: not back at 50/s.
    assert {n: after[n]["maxcompute_exporter_request_rate"] for n in KEPT} == rates
    assert "49" not in after and after["49b"]["maxcompute_up"] == 1.0
    # The unchanged targets keep their schedule (their next poll in an hour): only the changed
    # one polled after the reload.
    assert requests_since == after["49b"]["maxcompute_exporter_last_poll_requests"] == 1
