"""The client_credentials requests the token endpoint answers without Authlib (RFC 6749 §4.4).

A machine client asking for a token is most of a token endpoint's load, and Authlib's generic path
(grant lookup, hooks, client authentication by every registered method) costs more than an ES256
signature. The common, well-formed request is answered here: HTTP Basic credentials of a confidential
client registered with ``client_secret_basic`` and the ``client_credentials`` grant, a body of exactly
``grant_type`` and ``scope``. The token is the one Authlib's path would issue (``ProviderServer.token_body``)
for the scopes it would grant (``grants.client_credentials_scope``), in the same response.

Anything else (another method, a ``resource``, a wrong secret) is handed to Authlib, so every refusal
keeps its exact RFC 6749 §5.2 error: this path only ever answers 200.
"""

from __future__ import annotations

import time

from authlib.consts import default_json_headers
from starlette.responses import Response

from kubeoidc_provider.authorization_server import ProviderServer, basic_credentials
from kubeoidc_provider.grants import client_credentials_scope
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import OAuthClient
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.registration import Client
from kubeoidc_provider.registry import ClientRegistry

GRANT_TYPE = "client_credentials"
_METHOD = "client_secret_basic"
_HEADERS = dict(default_json_headers)


def basic_client(registry: ClientRegistry, request: ProviderRequest) -> Client | None:
    """The client that HTTP Basic credentials authenticate at the token endpoint, checked as Authlib
    checks them (a ``client_secret_basic`` client, its secret, no credentials in the body beside them);
    None for any other request, which Authlib then authenticates, or refuses, itself."""
    form = request.form
    if "client_secret" in form or "client_assertion" in form:
        return None
    credentials = basic_credentials(request)
    if credentials is None or form.get("client_id", credentials[0]) != credentials[0]:
        return None
    client = registry.get(credentials[0])
    if (
        client is None
        or client.public
        or client.service_accounts
        or client.token_endpoint_auth_method != _METHOD
    ):
        return None
    return client if client.check_secret(credentials[1], time.time()) else None


def direct_client(registry: ClientRegistry, request: ProviderRequest) -> Client | None:
    """The client a plain client_credentials request comes from, if this path may answer it; else None."""
    form = request.form
    if form.keys() != {"grant_type", "scope"} or form["grant_type"] != GRANT_TYPE or not form["scope"]:
        return None
    client = basic_client(registry, request)
    if client is None or GRANT_TYPE not in client.grant_types:
        return None
    return client


def answer(server: ProviderServer, client: Client, request: ProviderRequest) -> Response:
    """The token response for a request :func:`direct_client` accepted (on any thread: it may sign)."""
    oauth_client = OAuthClient(client)
    scope = client_credentials_scope(oauth_client, request.form["scope"])
    body = server.token_body(oauth_client, None, scope, include_refresh_token=False, request=request)
    return Response(dump_json(body), status_code=200, headers=_HEADERS)
