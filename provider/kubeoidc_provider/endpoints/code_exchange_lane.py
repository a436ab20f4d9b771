"""The code exchange (RFC 6749 §4.1.3, OIDC Core §3.1.3) answered in the token lane (``token_lane``),
ahead of routing and Authlib.

The request answered: ``grant_type=authorization_code`` with a ``code`` and at most a ``redirect_uri``,
a ``code_verifier`` and the authenticated ``client_id``, under HTTP Basic credentials of a confidential
``client_secret_basic`` client allowed the grant. The lane spends the code as the token endpoint would
(``grants.spend_code_early``, after the same client authentication), then answers only the exchange the
grant would grant: a code spent for the first time, issued to this client and OIDCClient, with its
redirect URI and the S256 verifier of its challenge, for a user still known. The tokens are the grant's
(``ProviderServer.issue_token``, ``grants.id_token_for``, ``ProviderServer.refresh_grant``).

Every other outcome goes on to the app with what the spend found (under ``SPENT_CODE`` in the ASGI
scope), so that the grant answers it as it answers any exchange: a replay revokes what the code issued,
a wrong verifier or redirect URI is ``invalid_grant``, with Authlib's exact error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Scope

from kubeoidc_provider.basic_clients import basic_client
from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.client_credentials_lane import CHEAP_ALGS, signs_cheaply
from kubeoidc_provider.endpoints.form_lane import Responder
from kubeoidc_provider.grants import (
    EndUser,
    code_end_user,
    id_token_for,
    spend_code_early,
    verifier_matches,
)
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import OAuthClient, issued_to
from kubeoidc_provider.registration import Client
from kubeoidc_provider.state import CodeGrant, new_token
from kubeoidc_provider.tokens import IssuedAccessToken

GRANT_TYPE = "authorization_code"
#: The ASGI scope key under which a declined exchange hands its spent code to the token endpoint.
SPENT_CODE = "kubeoidc.spent_code"
_PARAMETERS = frozenset({"grant_type", "code", "redirect_uri", "code_verifier", "client_id"})


async def answer_code_exchange(
    provider: Provider, authorization: str, form: dict[str, str], respond: Responder, scope: Scope
) -> bool:
    if not form.keys() <= _PARAMETERS:
        return False
    client = basic_client(provider.registry, authorization, form)
    early = await spend_code_early(provider.state, client, form.get("code"))
    if client is None or early is None:
        return False
    oauth_client = OAuthClient(client)
    granted = await _granted(provider, oauth_client, form, early.spent)
    if granted is None:
        scope[SPENT_CODE] = early
        return False
    grant, end_user = granted
    if exchange_signs_cheaply(provider, client):
        body, issued = _tokens(provider, oauth_client, end_user, grant)
    else:
        # An RSA signature on a worker thread, where it runs beside the loop (it releases the GIL).
        loop = asyncio.get_running_loop()
        body, issued = await loop.run_in_executor(
            provider.workers, _tokens, provider, oauth_client, end_user, grant
        )
    # What the response carries is kept before it leaves: the opaque access token's claims, the
    # refresh token's grant.
    await provider.minter.save_opaque(issued)
    refresh_token = body.get("refresh_token")
    if refresh_token is not None:
        refresh_grant, ttl = provider.server.refresh_grant(oauth_client, end_user, grant.scope, None)
        await provider.state.save_refresh_token(refresh_token, refresh_grant, ttl)
    await respond.json(dump_json(body))
    return True


async def _granted(
    provider: Provider,
    client: OAuthClient,
    form: dict[str, str],
    spent: tuple[CodeGrant, Any] | None,
) -> tuple[CodeGrant, EndUser] | None:
    """The code's grant and the user the exchange grants tokens for, when it passes every check of the
    grant; else None."""
    if spent is None or not spent[1].first:
        return None
    grant = spent[0]
    if (
        not issued_to(client, grant.client_id, grant.client_uid)
        or (grant.redirect_uri and form.get("redirect_uri") != grant.redirect_uri)
        or not verifier_matches(grant, form.get("code_verifier"))
    ):
        return None
    user = await provider.directory.find(grant.user_id)
    return (grant, code_end_user(grant, user)) if user is not None else None


def _tokens(
    provider: Provider, client: OAuthClient, end_user: EndUser, grant: CodeGrant
) -> tuple[dict[str, Any], IssuedAccessToken]:
    """The token response's body, in the order Authlib's grant writes it, and the access token."""
    body, issued = provider.server.issue_token(client, end_user, grant.scope)
    if client.check_grant_type("refresh_token"):
        body["refresh_token"] = new_token()
    if "openid" in grant.scope.split():
        body["id_token"] = id_token_for(
            provider.minter,
            client,
            end_user,
            grant.scope,
            nonce=grant.nonce,
            access_token=body["access_token"],
        )
    return body, issued


def exchange_signs_cheaply(provider: Provider, client: Client) -> bool:
    """Whether the exchange's tokens are minted on the event loop (``signs_cheaply``): the ID token and a
    JWT access token."""
    id_alg = client.id_token_signed_response_alg or provider.keys.signing_alg
    return (id_alg in CHEAP_ALGS or provider.signs_on_loop) and signs_cheaply(provider, client)
