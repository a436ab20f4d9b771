"""``POST /introspect`` (RFC 7662): a confidential client asks whether a token is active.

A client may introspect the tokens issued to it (RFC 7662 §4 leaves the policy to the server; this
one never tells a client about another client's tokens, it just answers ``active: false``).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from kubeoidc_provider.endpoints.presented import PresentedTokenEndpoint, presented_token_endpoint
from kubeoidc_provider.issued import IssuedToken
from kubeoidc_provider.oauth_client import SECRET_AUTH_METHODS


class Introspection(PresentedTokenEndpoint, IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(SECRET_AUTH_METHODS)

    def check_permission(self, token: IssuedToken, client: Any, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        return introspection_payload(token, self.server.settings.issuer)


def introspection_payload(token: IssuedToken, issuer: str) -> dict[str, Any]:
    """What an active token's introspection says (RFC 7662 §2.2)."""
    payload: dict[str, Any] = {
        "active": True,
        "client_id": token.get_client_id(),
        "token_type": "Bearer" if token.access is not None else "refresh_token",
        "exp": token.get_expires_at(),
        "iss": issuer,
    }
    if scope := token.get_scope():
        payload["scope"] = scope
    if token.access is not None:
        claims = token.access.claims
        payload.update(sub=claims["sub"], iat=claims["iat"], aud=claims["aud"], jti=claims["jti"])
    elif token.refresh is not None:
        payload.update(sub=token.refresh.user_id, iat=token.refresh.issued_at)
    return payload


introspect = presented_token_endpoint(Introspection.ENDPOINT_NAME, "/introspect")
