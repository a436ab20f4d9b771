"""The client_credentials grant (RFC 6749 §4.4) answered in the token lane (``token_lane``): a machine
client's plain token request, ahead of routing and Authlib.

The request answered: ``POST /token`` with a body of exactly ``grant_type=client_credentials`` and a
non-empty ``scope``, HTTP Basic credentials of a confidential ``client_secret_basic`` client allowed the
grant. The token is the one Authlib's path would issue (``ProviderServer.issue_token``) for the scopes
it would grant (``grants.client_credentials_scope``). Anything else (another method or grant, a
``resource``, a wrong secret) is Authlib's.
"""

from __future__ import annotations

import asyncio

from starlette.types import Scope

from kubeoidc_provider.basic_clients import basic_client
from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.form_lane import Responder
from kubeoidc_provider.grants import client_credentials_scope
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import OAuthClient
from kubeoidc_provider.registration import Client
from kubeoidc_provider.tokens import OPAQUE

GRANT_TYPE = "client_credentials"
#: The one body this lane answers: these two parameters.
_PARAMETERS = frozenset({"grant_type", "scope"})
#: Algorithms whose signature costs less than a hop to a worker thread and back.
CHEAP_ALGS = frozenset({"ES256", "EdDSA"})


async def answer_client_credentials(
    provider: Provider, authorization: str, form: dict[str, str], respond: Responder, scope: Scope
) -> bool:
    """Answer the request, or decline it having changed nothing (``scope`` is left as it came)."""
    if form.keys() != _PARAMETERS or not form["scope"]:
        return False
    client = basic_client(provider.registry, authorization, form)
    if client is None or GRANT_TYPE not in client.grant_types:
        return False
    oauth_client = OAuthClient(client)
    granted = client_credentials_scope(oauth_client, form["scope"])
    if signs_cheaply(provider, client):
        body, issued = provider.server.issue_token(oauth_client, None, granted)
    else:
        # An RSA signature on a worker thread, where it runs beside the loop (it releases the GIL).
        loop = asyncio.get_running_loop()
        body, issued = await loop.run_in_executor(
            provider.workers, provider.server.issue_token, oauth_client, None, granted
        )
    # An opaque token's claims are kept before the response that carries it leaves.
    await provider.minter.save_opaque(issued)
    await respond.json(dump_json(body))
    return True


def signs_cheaply(provider: Provider, client: Client) -> bool:
    """Whether the client's access token is minted on the event loop: opaque, or signed with a cheap
    algorithm, or signed where every signature is (``Provider.signs_on_loop``)."""
    alg = client.access_token_signed_response_alg or provider.keys.signing_alg
    return client.access_token_format == OPAQUE or alg in CHEAP_ALGS or provider.signs_on_loop
