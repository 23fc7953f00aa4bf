"""A hostile or mistaken configuration: a FIFO or a huge file where the config was, a duration
past any timer, a credentials URI full of secrets. Each is refused with one line naming the key,
and none blocks the running exporter, crashes it, or prints a secret.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from exporter import reload as reload_module
from exporter.config import ConfigError, parse_config, read_yaml
from exporter.config.uris import mask_uris_in, masked_uri
from exporter.metrics.reload_status import ReloadStatus
from exporter.reload import ConfigReloader
from tests.support.exporter_process import ExporterProcess, run_exporter

ENV = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIconfig", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
HUGE = "99999999999999999999d"


def config_text(poll: str = "{interval: 30s, timeout: 1s}") -> str:
    return f"targets:\n  - region: cn-hangzhou\n    endpoint: http://127.0.0.1:9\npoll: {poll}\n"


def test_an_overflowing_duration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config_text(f"{{interval: {HUGE}}}"))
    result = run_exporter("--config", str(path), "--check-config")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "maxcompute-exporter: config error: poll.interval: expected a duration of at most 365d,"
        " got '99999999999999999999d'\n"
    )


@pytest.mark.parametrize(
    "key", ["interval", "window", "timeout", "retry_backoff", "deadline", "max_staleness"]
)
@pytest.mark.parametrize("value", [HUGE, "9" * 400 + "s", "366d", "365d1ms"])
def test_every_duration_is_range_checked(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"targets": [{"region": "cn-hangzhou"}], "poll": {key: value}},
            environ=ENV,
        )
    shown = value if len(value) <= 40 else value[:37] + "..."
    assert str(caught.value) == f"poll.{key}: expected a duration of at most 365d, got {shown!r}"


def test_the_longest_interval_runs_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config_text("{interval: 365d, window: 1d, timeout: 1s}"))
    process = ExporterProcess("--config", str(path), env=ENV)
    try:
        process.wait_until("/healthz")
        assert "maxcompute_up" in process.wait_until("/metrics").text
    finally:
        code, stderr = process.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_check_config_masks_every_part_of_a_uri_past_its_host(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n  - region: cn-hangzhou\n"
        "    endpoint: http://proxyuser:proxypass@127.0.0.1:9/prefix-PATHSECRET\n"
        "    credentials:\n      type: credentials_uri\n"
        "      uri: http://user:USERSECRET@127.0.0.1:8/creds/TOKENINPATH?token=QUERYSECRET\n"
    )
    result = run_exporter("--config", str(path), "--check-config")
    assert result.returncode == 0, result.stderr
    for secret in ("proxypass", "PATHSECRET", "USERSECRET", "TOKENINPATH", "QUERYSECRET"):
        assert secret not in result.stdout + result.stderr
    assert "  endpoint: http://<secret>@127.0.0.1:9/<secret>\n" in result.stdout
    assert "    uri: http://<secret>@127.0.0.1:8/<secret>?<secret>\n" in result.stdout


def test_a_refused_endpoint_is_shown_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "targets": [
                    {"region": "cn-hangzhou", "endpoint": "https://u:PW@h/p?AccessKeySecret=SECRET"}
                ]
            },
            environ=ENV,
        )
    assert str(caught.value) == (
        "targets[0].endpoint: expected a URL like https://maxcompute.cn-hangzhou.aliyuncs.com, "
        "got 'https://<secret>@h/<secret>?<secret>'"
    )


def test_masked_uris_keep_only_scheme_host_and_port() -> None:
    assert masked_uri("https://sts.aliyuncs.com") == "https://sts.aliyuncs.com"
    assert masked_uri("https://sts.aliyuncs.com/") == "https://sts.aliyuncs.com"
    assert masked_uri("http://[::1]:80/a#frag") == "http://[::1]:80/<secret>#<secret>"
    assert masked_uri("http://h:99999/") == "<secret>"  # a port that does not parse
    assert masked_uri("not a uri") == "<secret>"


def test_uris_in_free_text_are_masked_whatever_their_password_holds() -> None:
    text = "from http://u:pa<ss@h:80/x?t=1,  http_code=500; at http://h:80, then 'http://h/t'"
    assert mask_uris_in(text) == (
        "from http://<secret>@h:80/<secret>?<secret>,  http_code=500; at http://h:80, then "
        "'http://h/<secret>'"
    )


def read_in_thread(path: Path) -> str:
    """``read_yaml``'s error for ``path``, from a thread that must end within 5 s."""
    outcome: list[str] = []

    def read() -> None:
        try:
            read_yaml(path, "--config")
        except ConfigError as error:
            outcome.append(str(error))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading blocked"
    return outcome[0]


def test_a_fifo_a_directory_and_a_huge_file_are_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert read_in_thread(fifo).startswith(
        "--config: expected a regular file (not a FIFO, device or directory), got "
    )
    assert read_in_thread(tmp_path).startswith("--config: expected a regular file")
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 200_000)  # 2 MB of comments: valid YAML, too big
    assert read_in_thread(huge).startswith("--config: expected a file of at most 256 KiB")


def test_a_reload_that_cannot_finish_in_time_fails_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reload_module, "LOAD_LIMIT_SECONDS", 0.2)

    def slow_load():
        time.sleep(1.0)
        raise AssertionError("never used")

    status = ReloadStatus()
    reloader = ConfigReloader(slow_load, lambda c: None, lambda e: None, lambda e: None, status)

    async def run() -> tuple[str | None, float]:
        started = time.monotonic()
        error = await reloader.reload()
        return error, time.monotonic() - started

    error, took = asyncio.run(run())
    assert error == "config: expected a configuration read and checked within 0.2s"
    assert took < 0.9
    values = {s.name: s.value for m in status.collect() for s in m.samples}
    assert values["maxcompute_exporter_config_last_reload_successful"] == 0.0


def test_sighup_with_a_fifo_for_config_fails_the_reload_and_keeps_serving(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config_text())
    process = ExporterProcess("--config", str(path), env=ENV)
    try:
        process.wait_until("/healthz")
        path.unlink()
        os.mkfifo(path)
        process.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        line = "maxcompute_exporter_config_last_reload_successful 0.0"
        while line not in process.get("/metrics").text.splitlines():
            assert time.monotonic() < deadline, "the reload never failed"
            time.sleep(0.05)
        assert process.get("/healthz").status_code == 200
        started = time.monotonic()
        code, stderr = process.stop()
        assert time.monotonic() - started < 5
    finally:
        process.stop()
    assert code == 0
    assert 'msg="reloading the configuration failed: keeping the running one"' in stderr
    assert "--config: expected a regular file (not a FIFO, device or directory)" in stderr
