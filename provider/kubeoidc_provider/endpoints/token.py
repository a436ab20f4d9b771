"""``POST /token`` (RFC 6749 §3.2, §5): authorization code, refresh token and client credentials.

Responses carry ``Cache-Control: no-store``; errors are RFC 6749 §5.2 JSON, with 401 and
``WWW-Authenticate`` when HTTP Basic client authentication fails.
"""

from __future__ import annotations

import asyncio
import json

from authlib.oauth2.rfc6749 import InvalidRequestError
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_contract import crd
from kubeoidc_provider.basic_clients import basic_client
from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.code_exchange_lane import SPENT_CODE, exchange_signs_cheaply
from kubeoidc_provider.endpoints.form import read_oauth_request
from kubeoidc_provider.grants import EarlySpend, answers_without_waiting, spend_code_early
from kubeoidc_provider.oauth_request import ProviderRequest

#: The grant types counted by name in the metrics (any other is "unknown", so labels stay bounded).
_GRANT_TYPES = frozenset(crd.grant_types())


async def token(request: Request) -> Response:
    provider = provider_of(request)
    oauth_request = await read_oauth_request(provider, request, "/token")
    if isinstance(oauth_request, Response):
        provider.metrics.token_requests.labels("unknown", "invalid_request").inc()
        return oauth_request
    grant_type = oauth_request.form.get("grant_type")
    response: Response
    if not grant_type:
        missing = InvalidRequestError("Missing 'grant_type' parameter.")
        response = provider.server.handle_error_response(oauth_request, missing)
    elif grant_type == "authorization_code" and await _spent_early(
        provider, oauth_request, request.scope.get(SPENT_CODE)
    ):
        # The code is spent and the user static: Authlib's grant has nothing to wait for. With cheap
        # signatures it answers on the loop; an RSA signature goes to a worker thread.
        on_loop = exchange_signs_cheaply(provider, oauth_request.client_registration)
        response = await _answer(provider, oauth_request, on_loop=on_loop)
    else:
        # Off the event loop: the grant signs one or two JWTs, and signing releases the GIL.
        # The grants' storage hooks run their coroutines back on this loop (state.wait_on).
        loop = oauth_request.loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            provider.workers, provider.server.create_token_response, oauth_request
        )
    if response.status_code == 200 and oauth_request.issued_access_token is not None:
        await provider.minter.save_opaque(oauth_request.issued_access_token)
    outcome = _outcome(response)
    provider.metrics.token_requests.labels(
        grant_type if grant_type in _GRANT_TYPES else "unknown", outcome
    ).inc()
    return response


async def _spent_early(provider: Provider, request: ProviderRequest, spent: EarlySpend | None) -> bool:
    """Spend an exchange's code on the loop when the grant would (see ``grants.spend_code_early``),
    unless the token lane spent it already (``spent``); whether the grant then runs without waiting on
    the state store."""
    client = basic_client(provider.registry, request.headers.get("Authorization"), request.form)
    request.client_registration = client
    if spent is None:
        spent = await spend_code_early(provider.state, client, request.form.get("code"))
    request.early_spend = spent
    return answers_without_waiting(provider.directory, request)


async def _answer(provider: Provider, request: ProviderRequest, *, on_loop: bool) -> Response:
    if on_loop:
        return provider.server.create_token_response(request)
    loop = request.loop = asyncio.get_running_loop()
    response: Response = await loop.run_in_executor(
        provider.workers, provider.server.create_token_response, request
    )
    return response


def _outcome(response: Response) -> str:
    """``ok``, or the RFC 6749 §5.2 error code the response carries."""
    if response.status_code == 200:
        return "ok"
    try:
        return str(json.loads(bytes(response.body)).get("error", "error"))
    except ValueError:
        return "error"
