"""ACS3-HMAC-SHA256 request signing, as Alibaba Cloud's official SDK computes it.

The steps are in the API documentation's ``wire-format.md``; ``tests/unit/test_signing.py`` checks
this module against requests signed by the official utility (``tests/data/signing-vectors.json``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from exporter.api.wire.running_jobs import EMPTY_PAYLOAD_SHA256
from exporter.config import Credentials

ALGORITHM = "ACS3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    """Encode every byte but ``A-Z a-z 0-9 - _ . ~`` (a space becomes ``%20``, not ``+``)."""
    return quote(value, safe="-_.~")


def canonical_query(query: Mapping[str, str]) -> str:
    """The signed form of a query: keys sorted, keys and values percent-encoded."""
    return "&".join(
        f"{percent_encode(key)}={percent_encode(value)}" for key, value in sorted(query.items())
    )


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Return (canonical header block, SignedHeaders) for the headers to be signed."""
    normalised = sorted((name.lower(), value.strip()) for name, value in headers.items())
    block = "".join(f"{name}:{value}\n" for name, value in normalised)
    return block, ";".join(name for name, _ in normalised)


def signature(
    secret: str,
    method: str,
    pathname: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str = EMPTY_PAYLOAD_SHA256,
) -> tuple[str, str]:
    """Return (SignedHeaders, hex signature) over exactly the headers given."""
    header_block, signed_headers = canonical_headers(headers)
    canonical_request = "\n".join(
        (method, pathname, canonical_query(query), header_block, signed_headers, payload_sha256)
    )
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return signed_headers, digest


def authorization(
    credentials: Credentials,
    method: str,
    pathname: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str = EMPTY_PAYLOAD_SHA256,
) -> str:
    """The ``Authorization`` header value for a request carrying ``headers`` (all signed)."""
    signed_headers, digest = signature(
        credentials.access_key_secret, method, pathname, query, headers, payload_sha256
    )
    return (
        f"{ALGORITHM} Credential={credentials.access_key_id},"
        f"SignedHeaders={signed_headers},Signature={digest}"
    )


@dataclass(frozen=True, slots=True)
class RequestToSign:
    """What a bodiless request signs besides the key: where it goes, what it asks, when, once."""

    method: str
    host: str
    pathname: str
    query: Mapping[str, str]
    action: str
    version: str
    # x-acs-date, ISO 8601 UTC (``wire.DATE_FORMAT``), and a nonce never sent twice.
    date: str
    nonce: str


def signed_headers_for(credentials: Credentials, request: RequestToSign) -> dict[str, str]:
    """The headers the SDK signs for a bodiless request (``x-acs-security-token`` with STS)."""
    headers = {
        "host": request.host,
        "x-acs-action": request.action,
        "x-acs-version": request.version,
        "x-acs-date": request.date,
        "x-acs-signature-nonce": request.nonce,
        "x-acs-content-sha256": EMPTY_PAYLOAD_SHA256,
        "accept": "application/json",
    }
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    return headers


def sign_request(credentials: Credentials, request: RequestToSign) -> dict[str, str]:
    """All headers of a signed request, ``Authorization`` included."""
    headers = signed_headers_for(credentials, request)
    headers["Authorization"] = authorization(
        credentials, request.method, request.pathname, request.query, headers
    )
    return headers
