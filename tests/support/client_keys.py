"""``private_key_jwt`` clients for the tests: a key pair the test makes, the assertions it signs, the
client registered with its public key, and an HTTPS server that publishes key sets at a ``jwksURI``."""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

import kubeoidc_contract as contract
from kubeoidc_provider.assertions import JWT_BEARER
from kubeoidc_provider.registry import ClientRegistry
from support.certificates import CertificateAuthority
from support.objects import client_objects
from support.provider import RegisteredClient

__all__ = [
    "JWT_BEARER",
    "ClientKey",
    "JwksServer",
    "KeyClient",
    "hmac_assertion",
    "jwks_server",
    "register_key_client",
]


class ClientKey:
    """A client's key pair (RSA or EC, by ``alg``), with a ``kid``; signs assertions."""

    def __init__(self, alg: str = "ES256", kid: str | None = None) -> None:
        self.alg = alg
        self.kid = kid or secrets.token_hex(4)
        self.key: Key = (
            ECKey.generate_key("P-256", private=True)
            if alg.startswith("ES")
            else RSAKey.generate_key(2048, private=True)
        )

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=True), "kid": self.kid, "alg": self.alg}

    def assertion(self, client_id: str, audience: str | list[str], **changes: Any) -> str:
        """A fresh assertion for ``client_id`` (RFC 7523 §3), with claims changed (None drops one);
        ``header`` replaces header members."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        header: dict[str, Any] = {"alg": self.alg, "kid": self.kid, **changes.pop("header", {})}
        claims.update(changes)
        return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, self.key)


@dataclass(frozen=True)
class KeyClient:
    """A ``private_key_jwt`` client's ID and its key."""

    client_id: str
    key: ClientKey


def hmac_assertion(client_id: str, audience: str, secret: str) -> str:
    """What ``client_secret_jwt`` sends: an HS256 assertion keyed with a shared secret."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": audience}
    claims |= {"jti": secrets.token_hex(8), "iat": now, "exp": now + 60}
    key = OctKey.import_key(secret.encode())
    return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])


def register_key_client(
    registry: ClientRegistry,
    name: str,
    *,
    keys: list[ClientKey] | None = None,
    jwks_uri: str | None = None,
    signing_alg: str | None = None,
    **options: Any,
) -> RegisteredClient:
    """A ``private_key_jwt`` client with ``keys`` inline (``spec.jwks``) or at ``jwks_uri``."""
    client_id = options.pop("client_id", f"{name}-{secrets.token_hex(4)}")
    options.setdefault("grant_types", ["client_credentials"])
    options.setdefault("redirect_uris", [])
    options.setdefault("scopes", ["invoices:read"])
    oidcclient, secret_obj = client_objects(
        name, client_id=client_id, secret=None, auth_method=contract.PRIVATE_KEY_JWT_AUTH_METHOD, **options
    )
    spec = oidcclient["spec"]
    if keys is not None:
        spec["jwks"] = {"keys": [key.public_jwk() for key in keys]}
    if jwks_uri is not None:
        spec["jwksURI"] = jwks_uri
    if signing_alg is not None:
        spec["tokenEndpointAuthSigningAlg"] = signing_alg
    registry.upsert_oidcclient(oidcclient)
    registry.upsert_secret(secret_obj)
    uris = spec["redirectURIs"]
    return RegisteredClient(client_id, None, uris[0] if uris else "", (oidcclient, secret_obj))


@dataclass
class JwksServer:
    """What the HTTPS key server publishes now, and how often it was asked."""

    url: str
    ca_file: Path
    keys: list[dict[str, Any]] = field(default_factory=list)
    cache_control: str | None = "max-age=3600"
    #: Answer 503 instead of the key set (the client's server is down).
    failing: bool = False
    #: Answer ``/jwks.json`` with a redirect to ``/moved.json``, which serves the key set.
    redirecting: bool = False
    fetches: int = 0

    def publish(self, *keys: ClientKey) -> None:
        self.keys = [key.public_jwk() for key in keys]

    def wait_for_fetches(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.fetches < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the key set was fetched {self.fetches} times, not {count}")
            time.sleep(0.02)


@contextmanager
def jwks_server(folder: Path) -> Iterator[JwksServer]:
    """An HTTPS server on a free loopback port, its certificate from a CA of the test's own, that
    answers ``GET /jwks.json`` with the published key set (or a redirect to ``/moved.json``, which has it)."""
    authority = CertificateAuthority("kubeoidc test client keys")
    cert_file, key_file, ca_file = folder / "jwks.crt", folder / "jwks.key", folder / "jwks-ca.crt"
    authority.write_server_files(cert_file, key_file)
    ca_file.write_bytes(authority.pem)
    state = JwksServer(url="", ca_file=ca_file)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in ("/jwks.json", "/moved.json"):
                self.send_error(404)
                return
            state.fetches += 1
            if state.failing:
                self.send_error(503)
                return
            if state.redirecting and self.path == "/jwks.json":
                self.send_response(302)
                self.send_header("Location", "/moved.json")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/jwk-set+json")
            self.send_header("Content-Length", str(len(body)))
            if state.cache_control is not None:
                self.send_header("Cache-Control", state.cache_control)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.url = f"https://127.0.0.1:{server.server_address[1]}/jwks.json"
    thread = threading.Thread(target=server.serve_forever, name="jwks-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
