"""``POST /revoke`` (RFC 7009): a client revokes one of its tokens.

Revoking a refresh token revokes its whole grant (RFC 7009 §2.1: the access tokens of the same
authorization too); revoking an access token revokes that token until it would have expired. An unknown
or already invalid token still gets 200 (§2.2).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import provider_of
from kubeoidc_provider.endpoints.form import read_oauth_request
from kubeoidc_provider.issued import IssuedToken, find_issued_token
from kubeoidc_provider.oauth_client import AUTH_METHODS


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return find_issued_token(self.server.state, self.server.minter, token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request: Any) -> None:
        state = self.server.state
        if token.refresh is not None:
            state.revoke_grant(token.refresh.grant_id, self.server.settings.refresh_token_ttl)
            state.delete_refresh_token(token.raw)
        elif token.access is not None:
            remaining = token.get_expires_at() - int(time.time())
            state.revoke_access_token(str(token.access.claims["jti"]), remaining)


async def revoke(request: Request) -> Response:
    provider = provider_of(request)
    oauth_request = await read_oauth_request(provider, request, "/revoke")
    if isinstance(oauth_request, Response):
        return oauth_request
    response: Response = provider.server.create_endpoint_response(Revocation.ENDPOINT_NAME, oauth_request)
    return response
