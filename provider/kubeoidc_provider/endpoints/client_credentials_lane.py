"""The client_credentials requests answered ahead of routing and Authlib (RFC 6749 §4.4).

A machine client asking for a token is most of a token endpoint's load, and each layer a request
crosses (routing, middleware, Starlette's request and response objects, Authlib's request and its
generic grant path) costs about as much as an ES256 signature. The common, well-formed request is
answered here, at the ASGI layer: ``POST /token`` with a form body of exactly ``grant_type`` and
``scope``, HTTP Basic credentials of a confidential client registered with ``client_secret_basic`` and
the ``client_credentials`` grant. The token is the one Authlib's path would issue
(``ProviderServer.issue_token``) for the scopes it would grant (``grants.client_credentials_scope``),
in the same response (``Cache-Control: no-store``, CORS for any origin).

Anything else (another method or grant, a ``resource``, a wrong secret, a body in several parts) goes
on to the app unchanged, with the body already read given back first: every refusal keeps its exact
RFC 6749 §5.2 error from Authlib, and this lane only ever answers 200. It sits inside ``BodyLimits``,
so the body it reads is bounded in size and pace like any other.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from authlib.consts import default_json_headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubeoidc_provider.basic_clients import basic_client
from kubeoidc_provider.context import Provider
from kubeoidc_provider.cors import response_headers
from kubeoidc_provider.grants import client_credentials_scope
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import OAuthClient
from kubeoidc_provider.registration import Client
from kubeoidc_provider.tokens import OPAQUE

GRANT_TYPE = "client_credentials"
#: The one body this lane answers: these two parameters, each once.
_PARAMETERS = frozenset({"grant_type", "scope"})
_FORM_MEDIA_TYPE = b"application/x-www-form-urlencoded"
#: Algorithms whose signature costs less than a hop to a worker thread and back.
CHEAP_ALGS = frozenset({"ES256", "EdDSA"})
#: Authlib's token response headers, and the ``Vary`` the CORS middleware adds to every response.
_HEADERS = [(name.lower().encode(), value.encode()) for name, value in default_json_headers] + [
    (b"vary", b"Origin")
]
_CORS = response_headers()


class ClientCredentialsLane:
    """ASGI middleware: answer a plain client_credentials request; hand every other request on."""

    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        self.app = app
        self.provider = provider
        self.path = f"{provider.settings.issuer_path}/token"
        self.issued = provider.metrics.token_requests.labels(GRANT_TYPE, "ok")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        authorization, origin = _read_headers(scope)
        if authorization is None:
            await self.app(scope, receive, send)
            return
        message = await receive()
        client, requested = self._plain_request(authorization, message)
        if client is None:
            await self.app(scope, _given_back(message, receive), send)
            return
        await self._answer(client, requested, origin, send)

    def _plain_request(self, authorization: str, message: Message) -> tuple[Client | None, str]:
        """The client and the requested scope of a request this lane answers; (None, "") otherwise."""
        if message["type"] != "http.request" or message.get("more_body", False):
            return None, ""
        try:
            pairs = parse_qsl(message.get("body", b"").decode(), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return None, ""
        form = dict(pairs)
        if len(pairs) != len(_PARAMETERS) or form.keys() != _PARAMETERS:
            return None, ""
        if form["grant_type"] != GRANT_TYPE or not form["scope"]:
            return None, ""
        client = basic_client(self.provider.registry, authorization, form)
        if client is None or GRANT_TYPE not in client.grant_types:
            return None, ""
        return client, form["scope"]

    async def _answer(self, client: Client, requested: str, origin: bool, send: Send) -> None:
        provider = self.provider
        oauth_client = OAuthClient(client)
        scope = client_credentials_scope(oauth_client, requested)
        if signs_cheaply(provider, client):
            body, issued = provider.server.issue_token(oauth_client, None, scope)
        else:
            # An RSA signature on a worker thread, where it runs beside the loop (it releases the GIL).
            loop = asyncio.get_running_loop()
            body, issued = await loop.run_in_executor(
                provider.workers, provider.server.issue_token, oauth_client, None, scope
            )
        # An opaque token's claims are kept before the response that carries it leaves.
        await provider.minter.save_opaque(issued)
        content = dump_json(body)
        headers = [*_HEADERS, (b"content-length", str(len(content)).encode())]
        if origin:
            headers.extend(_CORS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        self.issued.inc()


def signs_cheaply(provider: Provider, client: Client) -> bool:
    """Whether the client's access token is opaque or signed with a cheap algorithm."""
    alg = client.access_token_signed_response_alg or provider.keys.signing_alg
    return client.access_token_format == OPAQUE or alg in CHEAP_ALGS


def _read_headers(scope: Scope) -> tuple[str | None, bool]:
    """The ``Authorization`` header of a form POST carrying HTTP Basic credentials (else None), and
    whether the request has an ``Origin`` (a browser's cross-origin call, answered with CORS)."""
    authorization: str | None = None
    form = origin = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                return None, False  # twice: for Authlib to refuse
            authorization = value.decode("latin-1")
        elif name == b"content-type":
            form = value.partition(b";")[0].strip().lower() == _FORM_MEDIA_TYPE
        elif name == b"origin":
            origin = True
    if not form or authorization is None or authorization[:6].lower() != "basic ":
        return None, False
    return authorization, origin


def _given_back(first: Message, receive: Receive) -> Receive:
    """``receive`` with the message already read handed out again first."""
    pending: Message | None = first

    async def replay() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replay
