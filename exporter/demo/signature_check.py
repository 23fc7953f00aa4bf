"""The service's checks of a signed request, as the simulator makes them (the API's error codes)."""

from __future__ import annotations

import calendar
import hmac
import time

from exporter.api.auth.signing import ALGORITHM, signature
from exporter.api.wire.running_jobs import ACTION, API_VERSION, DATE_FORMAT, EMPTY_PAYLOAD_SHA256
from exporter.demo.simulator_state import SimulatorState

MAX_CLOCK_SKEW_SECONDS = 900


def signature_problem(
    state: SimulatorState,
    headers: dict[str, str],
    path: str,
    query: dict[str, str],
    action: str = ACTION,
) -> tuple[int, str, str] | None:
    """None if signed as the service wants ``action`` signed; else (status, errorCode, message)."""
    if headers.get("x-acs-action") != action:
        return 400, "MissingAction", f"x-acs-action must be {action}."
    if headers.get("x-acs-version") != API_VERSION:
        return 400, "InvalidVersion", f"x-acs-version must be {API_VERSION}."
    auth = headers.get("authorization", "")
    if not auth.startswith(ALGORITHM + " "):
        return 400, "IncompleteSignature", "The request signature is missing or malformed."
    fields = dict(
        item.split("=", 1) for item in auth[len(ALGORITHM) + 1 :].split(",") if "=" in item
    )
    key_id = fields.get("Credential", "")
    signed_names = fields.get("SignedHeaders", "").split(";")
    if key_id not in state.credentials:
        return 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
    secret, token = state.credentials[key_id]
    required = {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}
    if token is not None:
        required.add("x-acs-security-token")
    if not required <= set(signed_names) or any(n not in headers for n in signed_names):
        return 400, "IncompleteSignature", "A required header is not signed."
    if token is not None and headers["x-acs-security-token"] != token:
        return 400, "InvalidSecurityToken.Mismatch", "The security token does not match."
    if state.clock() >= state.expirations.get(key_id, float("inf")):
        with state.lock:
            state.expired_token_requests += 1
        return 400, "InvalidSecurityToken.Expired", "The security token has expired."
    if headers["x-acs-content-sha256"] != EMPTY_PAYLOAD_SHA256:
        return 400, "SignatureDoesNotMatch", "The payload hash does not match."
    try:
        sent_at = calendar.timegm(time.strptime(headers["x-acs-date"], DATE_FORMAT))
    except ValueError:
        return 400, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601 UTC."
    if abs(sent_at - state.clock()) > MAX_CLOCK_SKEW_SECONDS:
        return 400, "InvalidTimeStamp.Expired", "The request time is too far from now."
    _, expected = signature(
        secret, "GET", path, query, {name: headers[name] for name in signed_names}
    )
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        return 400, "SignatureDoesNotMatch", "The request signature does not conform."
    if not state.use_nonce(headers["x-acs-signature-nonce"]):
        return 400, "SignatureNonceUsed", "The signature nonce has been used."
    return None
