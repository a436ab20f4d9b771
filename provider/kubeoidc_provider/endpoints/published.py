"""The provider's published documents: ``GET /.well-known/openid-configuration`` (OpenID Connect
Discovery 1.0 §4) and ``GET /jwks`` (RFC 7517), answered from precomputed bytes.

Relying parties fetch both often and every answer is the same until the keys rotate, so they are served
at the ASGI layer, ahead of routing and middleware: a dictionary lookup and two sends. The bytes are
read from the signing keys on each request, so a rotation shows at once.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from kubeoidc_provider.context import Provider
from kubeoidc_provider.cors import preflight_headers, response_headers

ALLOW = b"GET, HEAD, OPTIONS"


class PublishedDocuments:
    """ASGI middleware: GET/HEAD of a published document is answered here; the rest goes to ``app``."""

    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        self.app = app
        # Short enough that a newly published key reaches relying parties well before it signs.
        self.cache_control = f"public, max-age={provider.settings.jwks_max_age}".encode()
        prefix = provider.settings.issuer_path
        self.documents: dict[str, tuple[Callable[[], bytes], bytes]] = {
            f"{prefix}/.well-known/openid-configuration": (lambda: provider.discovery, b"application/json"),
            f"{prefix}/jwks": (lambda: provider.keys.public_jwks_bytes, b"application/jwk-set+json"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        document = self.documents.get(scope["path"]) if scope["type"] == "http" else None
        if document is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            # A CORS preflight gets what it asks; any other method is not allowed (RFC 9110 §15.5.6).
            status = 204 if scope["method"] == "OPTIONS" else 405
            headers = [(b"allow", ALLOW), *response_headers()]
            headers.extend(preflight_headers(ALLOW) if status == 204 else [(b"content-length", b"0")])
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = document[0]()
        headers = [
            (b"content-type", document[1]),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", self.cache_control),
            *response_headers(),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
