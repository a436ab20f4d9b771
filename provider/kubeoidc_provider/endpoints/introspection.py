"""``POST /introspect`` (RFC 7662): a confidential client asks whether a token is active.

A client may introspect the tokens issued to it (RFC 7662 §4 leaves the policy to the server; this
one never tells a client about another client's tokens, it just answers ``active: false``).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import provider_of
from kubeoidc_provider.endpoints.form import read_oauth_request
from kubeoidc_provider.issued import IssuedToken, find_issued_token
from kubeoidc_provider.oauth_client import SECRET_AUTH_METHODS


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(SECRET_AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return find_issued_token(self.server.state, self.server.minter, token_string, token_type_hint)

    def check_permission(self, token: IssuedToken, client: Any, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "active": True,
            "client_id": token.get_client_id(),
            "token_type": "Bearer" if token.access is not None else "refresh_token",
            "exp": token.get_expires_at(),
            "iss": self.server.settings.issuer,
        }
        if scope := token.get_scope():
            payload["scope"] = scope
        if token.access is not None:
            claims = token.access.claims
            payload.update(sub=claims["sub"], iat=claims["iat"], aud=claims["aud"], jti=claims["jti"])
        elif token.refresh is not None:
            payload.update(sub=token.refresh.user_id, iat=token.refresh.issued_at)
        return payload


async def introspect(request: Request) -> Response:
    provider = provider_of(request)
    oauth_request = await read_oauth_request(provider, request, "/introspect")
    if isinstance(oauth_request, Response):
        return oauth_request
    response: Response = provider.server.create_endpoint_response(Introspection.ENDPOINT_NAME, oauth_request)
    return response
