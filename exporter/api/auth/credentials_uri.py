"""The ``credentials_uri`` source: one GET of a local credentials service, bounded in time and size.

The package's own ``URLCredentialsProvider`` reads the whole answer into memory whatever its
size, waits as long as bytes keep trickling in, and quotes the answer (and the URI, token and
all) in its errors. This one asks the same service the same way
(``{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}``) but
reads at most ``MAX_ANSWER_BYTES`` within ``ANSWER_LIMIT_SECONDS``, and its errors say what
was wrong without a byte of the answer or of the URI past its host.
"""

from __future__ import annotations

import calendar
import json
import time
from urllib.parse import urlsplit

import httpx
from alibabacloud_credentials.provider import URLCredentialsProvider
from alibabacloud_credentials.provider.refreshable import Credentials as PackageCredentials
from alibabacloud_credentials_api import ICredentialsProvider

from exporter.api.connect_errors import describe_transport_error

# A credentials answer is a few hundred bytes; a JWT-sized token still fits many times over.
MAX_ANSWER_BYTES = 64 * 1024
# The whole exchange, connecting included (the package's read timeout, as a total).
ANSWER_LIMIT_SECONDS = 10.0
EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# As the package's URI source: an answer is reused until this long before it expires.
CACHED_UNTIL_BEFORE_EXPIRY = 15 * 60
# The default chain's list of sources (a private attribute: the package offers no other way to
# put a bounded URI source in its place).
_CHAIN_SOURCES = "_DefaultCredentialsProvider__providers_chain"
FIELDS = ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")


class UriAnswerError(Exception):
    """The service's answer is not a credential; ``str()`` never quotes it."""


def read_answer(response: httpx.Response, deadline: float) -> bytes:
    """The answer's bytes, or UriAnswerError past ``MAX_ANSWER_BYTES`` or ``deadline``."""
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise UriAnswerError("the credentials URI answered with a Content-Encoding (not asked)")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():  # as they arrive (a chunk_size would wait to fill)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise UriAnswerError(
                f"the credentials URI's answer is larger than {MAX_ANSWER_BYTES // 1024} KiB"
            )
        if time.monotonic() > deadline:
            raise UriAnswerError(f"no whole answer within {ANSWER_LIMIT_SECONDS:g}s")
        chunks.append(chunk)
    return b"".join(chunks)


def credential_from(status: int, body: bytes) -> PackageCredentials:
    """The credential in a 200 answer; UriAnswerError, body withheld, for anything else."""
    if status != 200:
        raise UriAnswerError(f"the credentials URI answered HTTP {status} (body withheld)")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict) or answer.get("Code") != "Success":
        raise UriAnswerError("the credentials URI's answer is not a Code: Success object")
    if not all(isinstance(answer.get(name), str) for name in FIELDS):
        raise UriAnswerError(f"the credentials URI's answer lacks one of {', '.join(FIELDS)}")
    try:
        expiration = calendar.timegm(time.strptime(answer["Expiration"], EXPIRATION_FORMAT))
    except ValueError:
        raise UriAnswerError(
            "the credentials URI's Expiration is not like 2006-01-02T15:04:05Z"
        ) from None
    return PackageCredentials(
        access_key_id=answer["AccessKeyId"],
        access_key_secret=answer["AccessKeySecret"],
        security_token=answer["SecurityToken"],
        expiration=expiration,
        provider_name="credentials_uri",
    )


class BoundedUriProvider(ICredentialsProvider):
    """Asks ``uri`` for a credential each time; blocking, run on a fetch thread."""

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self._last: PackageCredentials | None = None

    def get_credentials(self) -> PackageCredentials:
        """The last answer until 15 minutes before it expires (as the package), then a new one.

        The default chain asks its chosen source twice when it settles (once through the chain,
        once for the expiry): this keeps that to one request.
        """
        last = self._last
        if last is not None and time.time() < last.get_expiration() - CACHED_UNTIL_BEFORE_EXPIRY:
            return last
        self._last = self._ask()
        return self._last

    def _ask(self) -> PackageCredentials:
        deadline = time.monotonic() + ANSWER_LIMIT_SECONDS
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(ANSWER_LIMIT_SECONDS),
                    trust_env=False,
                    follow_redirects=False,
                    headers={"Accept-Encoding": "identity"},
                ) as client,
                client.stream("GET", self._uri) as response,
            ):
                body = read_answer(response, deadline)
        except httpx.TransportError as error:
            # Said in our words, of its host and port: httpx's own texts name the URL whole.
            where = describe_transport_error(error, urlsplit(self._uri).netloc.rpartition("@")[2])
            raise UriAnswerError(f"the credentials URI could not be read: {where}") from None
        except httpx.HTTPError as error:
            raise UriAnswerError(
                f"the credentials URI could not be read ({type(error).__name__})"
            ) from None
        return credential_from(response.status_code, body)

    async def get_credentials_async(self) -> PackageCredentials:
        raise NotImplementedError("run get_credentials on a fetch thread")

    def get_provider_name(self) -> str:
        return "credentials_uri"


def with_bounded_uri(chain: ICredentialsProvider) -> ICredentialsProvider:
    """The default chain with its URI source (``ALIBABA_CLOUD_CREDENTIALS_URI``) bounded too."""
    sources = getattr(chain, _CHAIN_SOURCES, None)
    if isinstance(sources, list):
        bounded = [
            BoundedUriProvider(src._uri) if isinstance(src, URLCredentialsProvider) else src
            for src in sources
        ]
        sources[:] = bounded
    return chain
