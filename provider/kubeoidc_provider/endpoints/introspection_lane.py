"""The introspection lane (RFC 7662): a resource server asking about a live token, answered ahead of
routing and Authlib (``form_lane``).

The request answered: ``POST /introspect`` with a body of ``token`` and at most a supported
``token_type_hint``, HTTP Basic credentials of a confidential ``client_secret_basic`` client, for a
token of ours that is live and was issued to that client: the payload Authlib's endpoint gives
(``introspection.introspection_payload``). Anything else, including every ``active: false`` and every
refusal, is Authlib's.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Scope

from kubeoidc_provider.basic_clients import basic_client
from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.form_lane import FormLane, Responder
from kubeoidc_provider.endpoints.introspection import introspection_payload
from kubeoidc_provider.issued import find_issued_token
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import OAuthClient

_PARAMETERS = frozenset({"token", "token_type_hint"})
_HINTS = frozenset({"access_token", "refresh_token"})


class IntrospectionLane(FormLane):
    def __init__(self, app: ASGIApp, provider: Provider) -> None:
        super().__init__(app, provider, "/introspect")

    async def answer(
        self, authorization: str, form: dict[str, str], respond: Responder, scope: Scope
    ) -> bool:
        raw = form.get("token")
        hint = form.get("token_type_hint")
        if not raw or not form.keys() <= _PARAMETERS or (hint is not None and hint not in _HINTS):
            return False
        provider = self.provider
        client = basic_client(provider.registry, authorization, form)
        if client is None:
            return False
        token = await find_issued_token(provider.state, provider.minter, raw, hint)
        if token is None or token.is_expired() or not token.check_client(OAuthClient(client)):
            return False
        await respond.json(dump_json(introspection_payload(token, provider.settings.issuer)))
        return True
