"""Hostile answers from the API: whatever the bytes, a poll ends as a counted failure with a
fixed reason, the last good numbers are marked down (never served as fresh), and nothing
escapes ``poll()`` or ``--once``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.exporter_process import run_exporter
from tests.support.hostile_api import Answer, HostileApi, Poller, good, raw, record
from tests.support.jobs import envelope


@pytest.fixture
def api() -> Iterator[HostileApi]:
    server = HostileApi()
    yield server
    server.close()


def poll_once(url: str, answer: Answer, api: HostileApi) -> tuple[bool, Poller]:
    """A good poll first, then one against ``answer``; what the second one left behind."""
    stack = Poller(url)

    async def run() -> bool:
        try:
            api.answer = good
            assert await stack.poller.poll()
            api.answer = answer
            return await stack.poller.poll()
        finally:
            await stack.poller.aclose()

    return asyncio.run(run()), stack


NESTED = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda q: raw(NESTED), "invalid_response"),
        (
            lambda q: raw(
                json.dumps(envelope([], 0)).encode(), headers=("Content-Encoding: gzip",)
            ),
            "invalid_response",
        ),
        (
            lambda q: raw(
                json.dumps(
                    envelope([record(f"a{n}", int(q["from"])) for n in range(20)], 10**400)
                ).encode()
            ),
            "too_many_jobs",
        ),
        (
            lambda q: raw(
                json.dumps(
                    envelope([record(f"a{n}", int(q["from"])) for n in range(40)], 25)
                ).encode()
            ),
            "invalid_response",
        ),
        (
            lambda q: raw(
                json.dumps(
                    envelope([record(f"a{n}", int(q["from"])) for n in range(20)], 0)
                ).encode()
            ),
            "inconsistent",
        ),
        (  # every page the same 20 ids, whatever the slice or page: page 2 repeats page 1
            lambda q: raw(
                json.dumps(
                    envelope([record(f"a{n}", int(q["from"])) for n in range(20)], 40)
                ).encode()
            ),
            "inconsistent",
        ),
        (lambda q: raw(b"\xff\xfe\x00garbage", status="200 OK"), "invalid_response"),
        (lambda q: b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n{}", "connection"),
        (lambda q: b"not http at all\r\n\r\n", "connection"),
        (lambda q: raw(b"{}", headers=("X-A: " + "a" * 70_000,)), "connection"),
    ],
    ids=[
        "nested-json",
        "gzip-header-plain-body",
        "total-400-digits",
        "40-records-total-25",
        "20-records-total-0",
        "page-2-repeats-page-1",
        "binary-body",
        "truncated-body",
        "not-http",
        "header-of-70000-bytes",
    ],
)
def test_a_hostile_answer_is_a_counted_failure_and_the_last_numbers_are_marked_down(
    api: HostileApi, answer: Answer, reason: str
) -> None:
    ok, stack = poll_once(api.url, answer, api)
    assert ok is False
    assert stack.errors() == {reason: 1}
    status = stack.store.status(stack.target)
    assert status.up is False
    assert status.snapshot is not None and status.snapshot.jobs == 1  # last good, marked down


responses = st.builds(
    lambda status, headers, body: (status, headers, body),
    st.integers(min_value=100, max_value=599),
    st.lists(
        st.tuples(
            st.sampled_from(
                ["Content-Encoding", "Content-Type", "Retry-After", "Transfer-Encoding", "X-A"]
            ),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
        ),
        max_size=3,
    ),
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["data", "totalCount", "runningJobInfoList", "errorCode", "x"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    ),
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(response=responses)
def test_any_status_headers_and_body_end_as_a_counted_failure_or_a_valid_poll(
    response: tuple[int, list[tuple[str, str]], bytes],
) -> None:
    status, headers, body = response

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=body)

    stack = Poller("https://maxcompute.cn-hangzhou.aliyuncs.com")

    async def run() -> bool:
        try:
            # Answered inside the client's transport, raw bytes as sent: no network at all.
            with respx.mock(using="aiohttp") as mock:
                mock.get(url__startswith=stack.target.endpoint).mock(side_effect=answer)
                return await stack.poller.poll()
        finally:
            await stack.poller.aclose()

    ok = asyncio.run(run())  # never raises
    status_after = stack.store.status(stack.target)
    if ok:  # only an answer that says "no running jobs" can pass
        assert status_after.snapshot is not None and status_after.snapshot.jobs == 0
    else:
        assert sum(stack.errors().values()) == 1
        assert status_after.snapshot is None and status_after.up is False


def test_once_never_prints_a_traceback_whatever_the_api_answers(api: HostileApi, tmp_path) -> None:
    api.answer = lambda q: raw(NESTED)
    config = tmp_path / "config.yaml"
    config.write_text(f"targets:\n  - region: cn-hangzhou\n    endpoint: {api.url}\n")
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIx", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "y"}
    result = run_exporter("--config", str(config), "--once", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        'maxcompute_exporter_poll_errors_total{reason="invalid_response",region="cn-hangzhou"} 1.0'
        in (result.stdout)
    )
