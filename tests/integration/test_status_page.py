"""The landing page and /ready say which target fails and why."""

from __future__ import annotations

import time
from pathlib import Path

from exporter.demo.simulator import ApiSimulator
from exporter.polling.publish.snapshot import PollFailure, Snapshot, SnapshotStore
from exporter.web.status_page import StatusPage
from tests.support.exporter_process import ExporterProcess
from tests.support.jobs import NOW, job_record, make_target, snapshot_of

PROD = make_target(labels=(("account", "prod"),))
OTHER = make_target(region="cn-shanghai")
AUTH = PollFailure("auth", "Forbidden.RAM: not allowed status=403", NOW - 10)


def snapshot(*records: dict) -> Snapshot:
    return snapshot_of(*records, completed_at=NOW - 70)


def cells(page: str) -> list[list[str]]:
    rows = page.split("<tr>")[2:]  # after the header row
    return [[cell.split("</td>")[0] for cell in row.split("<td>")[1:]] for row in rows]


def test_each_target_row_says_what_is_wrong_and_when_the_next_poll_is_due() -> None:
    store = SnapshotStore((PROD, OTHER))
    store.publish_success(
        PROD, snapshot(job_record("a"), job_record("b"), job_record("c", project="ads"))
    )
    store.publish_failure(PROD, AUTH)
    store.publish_failure(OTHER, PollFailure("timeout", "request timed out after 10s", NOW - 5))
    page = StatusPage(store, 60.0, clock=lambda: NOW).html().decode()
    assert cells(page) == [
        [
            "cn-hangzhou{account=prod}",
            "DOWN",
            "2025-11-24 23:58:50 UTC (70s ago)",
            "auth: Forbidden.RAM: not allowed status=403 (10s ago)",
            "3",
            "2",
            "by 2025-11-25 00:00:50 UTC",
        ],
        [
            "cn-shanghai",
            "DOWN",
            "never",
            "timeout: request timed out after 10s (5s ago)",
            "",
            "",
            "by 2025-11-25 00:00:55 UTC",
        ],
    ]
    assert '<a href="/metrics">Metrics</a>' in page and "every 60s" in page


def test_a_recovered_target_is_up_and_still_shows_its_last_error() -> None:
    store = SnapshotStore((PROD,))
    store.publish_failure(PROD, AUTH)
    store.publish_success(PROD, snapshot(job_record("a")))
    (row,) = cells(StatusPage(store, 60.0, clock=lambda: NOW).html().decode())
    assert row[1:4] == [
        "up",
        "2025-11-24 23:58:50 UTC (70s ago)",
        "auth: Forbidden.RAM: not allowed status=403 (10s ago)",
    ]


def test_ready_names_the_targets_not_ready_and_why() -> None:
    store = SnapshotStore((PROD, OTHER))
    page = StatusPage(store, 60.0, clock=lambda: NOW)
    assert page.not_ready() == (
        "not ready:\n"
        "  cn-hangzhou{account=prod}: no good poll yet (first poll not finished)\n"
        "  cn-shanghai: no good poll yet (first poll not finished)\n"
    )
    store.publish_success(PROD, snapshot(job_record("a")))
    store.publish_failure(OTHER, AUTH)
    assert page.not_ready() == (
        "not ready:\n"
        "  cn-shanghai: no good poll yet "
        "(last error auth: Forbidden.RAM: not allowed status=403)\n"
    )


def test_everything_from_outside_is_escaped() -> None:
    target = make_target(labels=(("account", "<b>x</b>"),))
    store = SnapshotStore((target,))
    store.publish_failure(target, PollFailure("invalid_response", "<script>alert(1)</script>", NOW))
    page = StatusPage(store, 60.0, "/m?a=<x>", clock=lambda: NOW).html().decode()
    assert "<script>" not in page and "<b>" not in page and "<x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "cn-hangzhou{account=&lt;b&gt;x&lt;/b&gt;}" in page


def test_the_running_exporter_names_the_failing_target(tmp_path: Path) -> None:
    now = int(time.time())
    good = ApiSimulator(
        [job_record("a", submitted=now - 60, running=now - 30)],
        credentials={"LTAIgood": ("good-secret", None)},
    ).start()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"targets:\n  - region: cn-hangzhou\n    endpoint: {good.url}\n"
        "    credentials: {access_key_id: LTAIgood, access_key_secret: good-secret}\n"
        f"  - region: cn-beijing\n    endpoint: {good.url}\n"
        "    credentials: {access_key_id: LTAIunknown, access_key_secret: wrong-secret}\n"
        "poll: {interval: 30s, timeout: 5s, window: 1h}\n",
        encoding="utf-8",
    )
    exporter = ExporterProcess("--config", str(config))
    try:
        deadline = time.monotonic() + 20
        while True:
            ready = exporter.wait_until("/ready", status=503)
            if "last error" in ready.text or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        landing = exporter.get("/")
    finally:
        exporter.stop()
        good.stop()
    assert ready.text.startswith("not ready:\n  cn-beijing: no good poll yet (last error auth: ")
    assert "cn-hangzhou" not in ready.text
    assert "wrong-secret" not in ready.text + landing.text
    rows = cells(landing.text)
    assert [row[:2] for row in rows] == [["cn-hangzhou", "up"], ["cn-beijing", "DOWN"]]
    assert rows[0][4:6] == ["1", "1"] and rows[1][3].startswith("auth: ")
