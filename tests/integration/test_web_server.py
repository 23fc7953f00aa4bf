"""The HTTP server: bounded connections and timeouts, RFC 9110 Accept-Encoding, open probes,
/-/reload, and one-line flag errors."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.web.httpserver import ServerLimits, parse_head
from exporter.web.server import accepts_gzip
from exporter.web.webconfig import WebConfig
from tests.support.exporter_process import run_exporter
from tests.support.web_server import BODY, StaticExposition, running_server


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("identity", False),
        ("gzip;q=0.5, identity", False),
        ("gzip, identity;q=0.5", True),
        ("x-gzip", True),
        ("gzip;q=abc", False),
        ("br, deflate", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding_per_rfc_9110(header: str | None, gzipped: bool) -> None:
    assert accepts_gzip(header) is gzipped


def test_gzip_q0_is_served_plain_and_gzip_is_served_gzipped() -> None:
    with running_server(StaticExposition()) as base:
        plain = httpx.get(f"{base}/metrics", headers={"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in plain.headers and plain.content == BODY
        packed = httpx.get(f"{base}/metrics", headers={"Accept-Encoding": "GZip"})
        assert packed.headers["content-encoding"] == "gzip" and packed.content == BODY


def test_head_get_and_methods() -> None:
    with running_server(StaticExposition(), ready=False) as base:
        head = httpx.head(f"{base}/metrics", headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(BODY))
        assert httpx.get(f"{base}/ready").status_code == 503
        assert httpx.post(f"{base}/metrics").status_code == 405
        assert httpx.get(f"{base}/nope").status_code == 404


def test_ready_and_healthz_are_open_with_basic_auth_on() -> None:
    import bcrypt

    users = {"prometheus": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4))}
    with running_server(StaticExposition(), web_config=WebConfig(users=users)) as base:
        assert httpx.get(f"{base}/ready").status_code == 200
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert httpx.post(f"{base}/-/reload").status_code == 401


def test_reload_endpoint_is_off_without_the_lifecycle_flag_as_in_prometheus() -> None:
    reloads = []

    async def reload() -> None:
        reloads.append(1)

    with running_server(StaticExposition(), reload=reload) as base:
        for method in ("POST", "PUT"):
            answer = httpx.request(method, f"{base}/-/reload")
            assert answer.status_code == 403
            assert answer.text == (
                "Lifecycle API is not enabled. Start with --web.enable-lifecycle, or send SIGHUP.\n"
            )
        get = httpx.get(f"{base}/-/reload")
        assert (get.status_code, get.headers["allow"]) == (405, "POST, PUT")
    assert reloads == []


def test_reload_endpoint_is_post_only_and_reports_the_error() -> None:
    answers = iter([None, "poll.interval: expected a duration like 30s, 5m, 1h or 2d, got '1'"])

    async def reload() -> str | None:
        return next(answers)

    with running_server(StaticExposition(), reload=reload, enable_lifecycle=True) as base:
        get = httpx.get(f"{base}/-/reload")
        assert (get.status_code, get.headers["allow"]) == (405, "POST, PUT")
        assert get.text == "Only POST or PUT requests allowed\n"
        good = httpx.post(f"{base}/-/reload")
        assert (good.status_code, good.text) == (200, "configuration reloaded\n")
        bad = httpx.post(f"{base}/-/reload")
        assert bad.status_code == 500
        assert bad.text == (
            "failed to reload config: poll.interval: expected a duration like 30s, 5m, 1h or 2d,"
            " got '1'\n"
        )


def raw_exchange(base: str, data: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        # A refused connection is reset (RST) rather than closed: the same "closed" to a client.
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
        (b"POST /-/reload HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", b"413"),
        (b"POST /-/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
    ],
)
def test_malformed_requests_get_a_status_and_a_closed_connection(data: bytes, status) -> None:
    with running_server(StaticExposition()) as base:
        answer = raw_exchange(base, data)
        assert answer.split(b" ")[1] == status
        assert b"Connection: close\r\n" in answer
        assert httpx.get(f"{base}/metrics").status_code == 200


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    with running_server(StaticExposition(), limits=ServerLimits(header_timeout=0.3)) as base:
        started = time.monotonic()
        assert raw_exchange(base, b"GET /metr") == b""
        assert 0.2 < time.monotonic() - started < 5


def test_1000_half_open_connections_do_not_keep_a_fresh_scrape_out() -> None:
    with running_server(StaticExposition()) as base:
        host, port = base.removeprefix("http://").split(":")
        idle = []
        try:
            for index in range(1000):
                sock = socket.create_connection((host, int(port)), timeout=5)
                if index % 2:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
                idle.append(sock)
            started = time.monotonic()
            response = httpx.get(f"{base}/metrics", timeout=5)
            assert response.status_code == 200 and response.content == BODY
            assert time.monotonic() - started < 1.0
        finally:
            for sock in idle:
                sock.close()


def test_a_scrapers_kept_alive_connection_is_never_taken_by_newcomers() -> None:
    with running_server(StaticExposition(), limits=ServerLimits(max_connections=4)) as base:
        host, port = base.removeprefix("http://").split(":")
        with httpx.Client() as scraper:
            assert scraper.get(f"{base}/metrics").status_code == 200
            newcomers = [socket.create_connection((host, int(port))) for _ in range(20)]
            try:
                for _ in range(5):
                    assert scraper.get(f"{base}/metrics").status_code == 200
            finally:
                for sock in newcomers:
                    sock.close()


@pytest.mark.parametrize("value", ["0", "-1", "lots", "10001"])
def test_a_bad_max_connections_is_one_line_and_exit_2(value: str) -> None:
    result = run_exporter("--demo", "--web.max-connections", value)
    assert result.returncode == 2
    assert result.stderr == (
        "maxcompute-exporter: error: argument --web.max-connections: expected a whole number"
        f" from 1 to 10000, got {value!r} (see --help)\n"
    )


def test_a_tls_client_that_never_shakes_hands_is_closed_after_the_timeout(certificate) -> None:
    import ssl

    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    limits = ServerLimits(tls_handshake_timeout=0.3)
    with running_server(
        StaticExposition(), web_config=WebConfig(tls=context), limits=limits
    ) as base:
        started = time.monotonic()
        assert raw_exchange(base, b"") == b""
        assert 0.2 < time.monotonic() - started < 5
        client = ssl.create_default_context(cafile=str(cert))
        https = base.replace("http://", "https://")
        assert httpx.get(f"{https}/metrics", verify=client).content == BODY


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout() -> None:
    with running_server(StaticExposition(), limits=ServerLimits(idle_timeout=0.3)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
            started = time.monotonic()
            assert sock.recv(65536) == b""
            assert 0.2 < time.monotonic() - started < 5


def test_when_every_connection_has_been_served_a_newcomer_takes_the_longest_idle_one() -> None:
    limits = ServerLimits(max_connections=2)
    with running_server(StaticExposition(), limits=limits) as base:
        host, port = base.removeprefix("http://").split(":")
        probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(probe)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
                time.sleep(0.05)
            newcomer = raw_exchange(base, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert newcomer.startswith(b"HTTP/1.1 200 OK\r\n") and newcomer.endswith(BODY)
            # The longest idle was closed cleanly (FIN, no reset); the other one is still served.
            assert held[0].recv(65536) == b""
            held[1].sendall(probe)
            assert held[1].recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        finally:
            for sock in held:
                sock.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_request_head_is_a_request_or_refused_never_an_error(head: bytes) -> None:
    request = parse_head(head, "127.0.0.1")
    assert request is None or (request.method and request.target)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_accept_encoding_is_an_answer(header: str) -> None:
    assert accepts_gzip(header) in (True, False)


def test_any_bytes_sent_get_an_answer_or_a_close_and_the_server_stays_up() -> None:
    samples = [
        b"GET / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"\x00\xff\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n" * 2 + b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET " + b"/" * 20_000 + b" HTTP/1.1\r\n\r\n",
    ]
    with running_server(StaticExposition()) as base:
        for data in samples:
            answer = raw_exchange(base, data)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
        assert httpx.get(f"{base}/metrics").status_code == 200


class ManyParts:
    """An exposition of many parts, small and large, as a fleet's job exposition is."""

    parts = tuple((f"# part {n}\n".encode() * (1 if n % 3 else 20_000)) for n in range(60))

    def render_parts(self) -> tuple[bytes, ...]:
        return self.parts

    def render_gzip(self) -> bytes:
        import gzip

        return gzip.compress(b"".join(self.parts))


def test_a_body_of_many_parts_arrives_whole_even_to_a_slow_reader() -> None:
    body = b"".join(ManyParts.parts)
    assert len(body) > 3 * 1024 * 1024
    with running_server(ManyParts()) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = bytearray()
            while chunk := sock.recv(4096):
                received += chunk
                if len(received) < 256 * 1024:
                    time.sleep(0.001)  # reads slowly at first, so the server waits on the buffer
        head, _, got = bytes(received).partition(b"\r\n\r\n")
        assert f"Content-Length: {len(body)}".encode() in head
        assert got == body
