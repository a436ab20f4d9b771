"""``POST /revoke`` (RFC 7009): a client revokes one of its tokens.

Revoking a refresh token revokes its whole grant (RFC 7009 §2.1: the access tokens of the same
authorization too); revoking an access token revokes that token until it would have expired. An unknown
or already invalid token still gets 200 (§2.2).
"""

from __future__ import annotations

import time

from authlib.oauth2.rfc7009 import RevocationEndpoint

from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.presented import PresentedTokenEndpoint, presented_token_endpoint
from kubeoidc_provider.issued import IssuedToken
from kubeoidc_provider.oauth_client import AUTH_METHODS
from kubeoidc_provider.oauth_request import ProviderRequest


class Revocation(PresentedTokenEndpoint, RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def revoke_token(self, token: IssuedToken, request: ProviderRequest) -> None:
        # Revoked by _revoke once Authlib returns: the state's calls are coroutines.
        request.revoked_token = token


async def _revoke(provider: Provider, request: ProviderRequest) -> None:
    token: IssuedToken | None = getattr(request, "revoked_token", None)
    state, settings = provider.state, provider.settings
    if token is None:
        return
    if token.refresh is not None:
        await state.revoke_grant(token.refresh.grant_id, settings.refresh_token_ttl)
        await state.delete_refresh_token(token.raw)
        grant = token.refresh
        sid = grant.extra.get("sid")
        provider.backchannel.grant_revoked(
            grant.client_id, grant.user_id, sid if isinstance(sid, str) else None
        )
    elif token.access is not None and "." not in token.raw:
        await state.delete_access_token(token.raw)  # an opaque token: its stored claims go
    elif token.access is not None:
        remaining = token.get_expires_at() - int(time.time())
        await state.revoke_access_token(str(token.access.claims["jti"]), remaining)


revoke = presented_token_endpoint(Revocation.ENDPOINT_NAME, "/revoke", after=_revoke)
