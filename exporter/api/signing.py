"""ACS3-HMAC-SHA256 request signing, as Alibaba Cloud's official SDK computes it.

The steps are in ``../shared/api/wire-format.md``; ``tests/test_signing.py`` checks this module
against requests signed by the official utility.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

from exporter.config import Credentials

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()


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


def signed_headers_for(
    credentials: Credentials,
    host: str,
    action: str,
    version: str,
    date: str,
    nonce: str,
) -> dict[str, str]:
    """The headers the SDK signs for a bodiless request (``x-acs-security-token`` with STS)."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": EMPTY_PAYLOAD_SHA256,
        "accept": "application/json",
    }
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    return headers


def sign_request(
    credentials: Credentials,
    method: str,
    host: str,
    pathname: str,
    query: Mapping[str, str],
    action: str,
    version: str,
    date: str,
    nonce: str,
) -> dict[str, str]:
    """All headers of a signed request, ``Authorization`` included."""
    headers = signed_headers_for(credentials, host, action, version, date, nonce)
    headers["Authorization"] = authorization(credentials, method, pathname, query, headers)
    return headers
