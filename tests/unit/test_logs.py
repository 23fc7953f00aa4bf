"""Log fields from the network are escaped to one line and cut to a bounded length."""

from __future__ import annotations

import io
import json
import logging
import re

import httpx
import pytest
import respx

from exporter.logs import MAX_FIELD_CHARACTERS, JsonFormatter, LogfmtFormatter, safe_text
from exporter.metrics.registries import ExporterMetrics
from exporter.polling.publish.snapshot import SnapshotStore
from exporter.polling.schedule.poller import TargetPoller
from tests.support.jobs import make_target

URL = "https://maxcompute.cn-hangzhou.aliyuncs.com/api/v1/jobs/runningJobs"


def test_control_characters_and_lone_surrogates_become_escapes() -> None:
    assert safe_text("a\rb\nc\td\x00e\x1bf\x7fg\x85h\u2028i\ud800j é") == (
        "a\\rb\\nc\\td\\x00e\\x1bf\\x7fg\\x85h\\u2028i\\ud800j é"
    )


def test_long_fields_are_cut_with_a_note_of_what_was_left_out() -> None:
    text = safe_text("r" * 100_000)
    assert text == "r" * MAX_FIELD_CHARACTERS + f"...[{100_000 - MAX_FIELD_CHARACTERS} more]"


@pytest.mark.parametrize("formatter", [LogfmtFormatter(), JsonFormatter()])
async def test_a_hostile_error_answer_is_logged_as_one_bounded_line(formatter, settings) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("exporter")
    logger.addHandler(handler)
    target = make_target()
    store = SnapshotStore((target,))
    metrics = ExporterMetrics(store, (target,), (), 60.0, process_metrics=False)
    poller = TargetPoller(target, settings, store, metrics.polls)
    body = {
        "requestId": "R" * 100_000,
        "httpCode": 400,
        "errorCode": "Invalid\r\nParameter",
        "errorMsg": "bad\r\nlevel=error msg=injected\x1b[31m",
    }
    try:
        with respx.mock(using="aiohttp") as mock:
            mock.get(URL).mock(return_value=httpx.Response(400, json=body))
            assert not await poller.poll()
    finally:
        logger.removeHandler(handler)
        await poller.aclose()
    output = stream.getvalue()
    assert output.count("\n") == 1 and "\r" not in output and "\x1b" not in output
    assert len(output) < 2 * MAX_FIELD_CHARACTERS
    if isinstance(formatter, JsonFormatter):
        error = json.loads(output)["error"]
        assert error.startswith(
            "GetRunningJobs failed: bad\\r\\nlevel=error msg=injected\\x1b[31m status=400 "
            "errorCode=Invalid\\r\\nParameter requestId=RRR"
        )
    else:
        assert (
            'error="GetRunningJobs failed: bad\\\\r\\\\nlevel=error msg=injected\\\\x1b[31m'
            " status=400 errorCode=Invalid\\\\r\\\\nParameter requestId=RRR"
        ) in output
    assert re.search(r"RRR\.\.\.\[\d+ more\]", output)
