"""One TLS context for every target with the same trust, built once and off the event loop."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import certifi

from exporter.api.transport import tls
from exporter.api.transport.client import RunningJobsClient
from exporter.api.transport.tls import TrustSettings, prepare_tls_context, tls_context
from exporter.config import PollSettings
from tests.support.jobs import make_target


def test_every_target_with_the_default_trust_shares_one_context() -> None:
    clients = [
        RunningJobsClient(make_target(endpoint=f"https://h{n}.example"), PollSettings())
        for n in range(3)
    ]
    pools = [pool for client in clients for pool in (client._http, client._quota_http)]
    contexts = {id(pool._transport._tls) for pool in pools}
    assert contexts == {id(tls_context())}
    assert tls_context(TrustSettings(certifi.where())) is tls_context()


def test_the_shared_context_verifies_as_httpx_did() -> None:
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.cert_store_stats()["x509_ca"] > 100  # certifi's bundle, not an empty store


async def test_a_context_not_yet_built_is_built_in_a_worker_thread(
    monkeypatch, certificate: tuple[Path, Path]
) -> None:
    built_in: list[threading.Thread] = []
    build = tls._new_context

    def recording(trust: TrustSettings) -> ssl.SSLContext:
        built_in.append(threading.current_thread())
        return build(trust)

    monkeypatch.setattr(tls, "_new_context", recording)
    trust = TrustSettings(str(certificate[0]))  # a trust no other test builds
    first = await prepare_tls_context(trust)
    assert await prepare_tls_context(trust) is first
    assert len(built_in) == 1 and built_in[0] is not threading.main_thread()
    assert first is not tls_context()  # another trust, another context
    assert first.cert_store_stats()["x509_ca"] == 1
    monkeypatch.delitem(tls._built, trust)
