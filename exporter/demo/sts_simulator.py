"""Temporary credentials for the simulator: STS triples that expire, and the services that
hand them out, on loopback.

``StsIssuer`` mints (AccessKeyId, secret, token) triples that the simulator accepts until their
expiry and refuses after (``InvalidSecurityToken.Expired``). ``CredentialServer`` serves them the
ways Alibaba Cloud does, each in the wire format the official credentials package reads:

- a credentials URI (``GET /credentials``), as for ``ALIBABA_CLOUD_CREDENTIALS_URI``;
- STS ``AssumeRole`` (signed with a known AccessKey) and ``AssumeRoleWithOIDC`` (with the
  expected OIDC token), at ``/`` for an ``sts_endpoint`` of ``http://127.0.0.1:PORT``;
- the ECS metadata service's RAM-role paths, reached as an HTTP proxy: the package addresses
  100.100.100.200, and a client whose proxy is this server never leaves loopback;
- as an HTTPS proxy, a refusal of every tunnel (recorded, so a test sees where a client went).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, quote_plus, urlsplit

from exporter.demo.simulator_state import SimulatorState
from exporter.demo.threading_server import QuietThreadingHTTPServer

ECS_ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
ECS_TOKEN_PATH = "/latest/api/token"


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """One STS triple the issuer minted, and when it expires."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: int

    @property
    def expiration(self) -> str:
        """The expiry as STS writes it (whole seconds, UTC)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at))

    def as_json(self) -> dict[str, str]:
        return {
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
            "SecurityToken": self.security_token,
            "Expiration": self.expiration,
        }


class StsIssuer:
    """Mints STS triples valid for ``lifetime`` seconds and registers them with the simulator."""

    def __init__(self, state: SimulatorState, lifetime: int) -> None:
        self._state = state
        self.lifetime = lifetime
        self.issued: list[IssuedCredential] = []

    def issue(self) -> IssuedCredential:
        now = self._state.clock()
        credential = IssuedCredential(
            access_key_id=f"STS.{secrets.token_hex(8)}",
            access_key_secret=secrets.token_hex(16),
            security_token=f"CAIS{secrets.token_hex(24)}",
            expires_at=int(now) + self.lifetime,
        )
        with self._state.lock:
            # Long-expired triples are forgotten, so a long run keeps the maps small.
            for key_id, expiry in list(self._state.expirations.items()):
                if expiry < now - 60:
                    del self._state.expirations[key_id]
                    self._state.credentials.pop(key_id, None)
            self._state.credentials[credential.access_key_id] = (
                credential.access_key_secret,
                credential.security_token,
            )
            self._state.expirations[credential.access_key_id] = credential.expires_at
            self.issued.append(credential)
        return credential


def rpc_signature(secret: str, query: dict[str, str]) -> str:
    """The HMAC-SHA1 signature of an STS (RPC-style) GET request, ``Signature`` excluded."""
    canonical = "&".join(
        f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(query.items()) if k != "Signature"
    )
    string_to_sign = f"GET&{quote_plus('/')}&{quote_plus(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class CredentialHandler(BaseHTTPRequestHandler):
    """Answers the credential services' requests (URI, STS, ECS metadata) from the issuer."""

    server: CredentialServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict | str) -> None:
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_CONNECT(self) -> None:
        # As an HTTPS proxy it refuses every tunnel: TLS to the real STS cannot be played here,
        # but the request shows where a client was going.
        self.server.record("CONNECT", self.path)
        self.close_connection = True
        self._reply(403, {"Code": "TunnelRefused"})

    def do_PUT(self) -> None:
        self.server.record("PUT", self.path)
        if urlsplit(self.path).path == ECS_TOKEN_PATH:
            self._reply(200, "metadata-token-" + secrets.token_hex(8))
        else:
            self._reply(404, {"Code": "NotFound"})

    def do_GET(self) -> None:
        server = self.server
        server.record("GET", self.path)
        if server.failing:
            # What a broken service may send back: a body that must never reach a log line.
            self._reply(500, {"Code": "InternalError", "Leak": server.failure_marker})
            return
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path == "/credentials":
            self._reply(200, {"Code": "Success", **server.issuer.issue().as_json()})
        elif parts.path == ECS_ROLE_PATH:
            self._reply(200, server.ecs_role_name)
        elif parts.path == ECS_ROLE_PATH + server.ecs_role_name:
            issued = server.issuer.issue().as_json()
            self._reply(200, {"Code": "Success", "LastUpdated": issued["Expiration"], **issued})
        elif parts.path == "/" and query.get("Action") in ("AssumeRole", "AssumeRoleWithOIDC"):
            self._assume_role(query)
        else:
            self._reply(404, {"Code": "NotFound"})

    def _assume_role(self, query: dict[str, str]) -> None:
        server = self.server
        if query["Action"] == "AssumeRole":
            secret = server.callers.get(query.get("AccessKeyId", ""))
            if secret is None or query.get("Signature") != rpc_signature(secret, query):
                self._reply(400, {"Code": "SignatureDoesNotMatch"})
                return
        elif query.get("OIDCToken") != server.oidc_token:
            self._reply(400, {"Code": "AuthenticationFail.OIDCToken.Invalid"})
            return
        if query.get("RoleArn") != server.role_arn:
            self._reply(403, {"Code": "NoPermission"})
            return
        issued = server.issuer.issue()
        self._reply(200, {"RequestId": secrets.token_hex(8), "Credentials": issued.as_json()})


class CredentialServer(QuietThreadingHTTPServer):
    """The credential services of ``StsIssuer`` on loopback; ``requests`` lists what came in."""

    def __init__(
        self,
        issuer: StsIssuer,
        *,
        role_arn: str = "acs:ram::1000000000000000:role/maxcompute-exporter",
        callers: dict[str, str] | None = None,
        oidc_token: str = "",
        ecs_role_name: str = "maxcompute-exporter",
        address: tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        super().__init__(address, CredentialHandler)
        self.issuer = issuer
        self.role_arn = role_arn
        self.callers = dict(callers or {})
        self.oidc_token = oidc_token
        self.ecs_role_name = ecs_role_name
        self.failing = False
        self.failure_marker = "leaked-" + secrets.token_hex(8)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def start(self) -> CredentialServer:
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="credential-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
