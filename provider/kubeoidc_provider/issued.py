"""Finding a token a client presents back to us, for revocation (RFC 7009) and introspection (RFC 7662).

A refresh token is looked up by its hash in the state store; an access token is one of our JWTs and
is checked by signature. Either is wrapped in the small ``TokenMixin`` view Authlib's endpoints read.
"""

from __future__ import annotations

import time
from typing import Any

from kubeoidc_provider.oauth_client import issued_to
from kubeoidc_provider.state import RefreshGrant, State
from kubeoidc_provider.tokens import AccessToken, InvalidToken, TokenMinter


class IssuedToken:
    """A refresh or access token of ours, as Authlib's revocation and introspection endpoints see it."""

    def __init__(self, raw: str, *, refresh: RefreshGrant | None = None, access: AccessToken | None = None):
        self.raw = raw
        self.refresh = refresh
        self.access = access

    @property
    def token_type(self) -> str:
        return "refresh_token" if self.refresh is not None else "access_token"

    def get_client_id(self) -> str:
        if self.refresh is not None:
            return self.refresh.client_id
        assert self.access is not None
        return self.access.client_id

    def check_client(self, client: Any) -> bool:
        if self.refresh is not None:
            # A refresh token belongs to one OIDCClient, not to whoever holds its client ID now.
            return issued_to(client, self.refresh.client_id, self.refresh.client_uid)
        assert self.access is not None
        uid = self.access.client_uid
        if uid is None:  # minted before access tokens named their OIDCClient; lives minutes at most
            return bool(self.access.client_id == client.get_client_id())
        return issued_to(client, self.access.client_id, uid)

    def get_scope(self) -> str:
        if self.refresh is not None:
            return self.refresh.scope
        assert self.access is not None
        return " ".join(sorted(self.access.scopes))

    def get_expires_at(self) -> int:
        if self.refresh is not None:
            return self.refresh.expires_at
        assert self.access is not None
        return int(self.access.claims["exp"])

    def is_expired(self) -> bool:
        return self.get_expires_at() <= time.time()

    def is_revoked(self) -> bool:
        # Revoked tokens are never found by ``find_issued_token``.
        return False


async def find_issued_token(
    state: State, minter: TokenMinter, raw: str, hint: str | None
) -> IssuedToken | None:
    """The token if it is ours and still live (not spent, revoked or expired); the hint orders the search.

    Without a hint, an access token is looked for first: resource servers introspect access tokens, and
    a JWT (it has dots; refresh tokens never do) is never looked for among the refresh tokens at all.
    """
    if "." in raw:
        lookups: tuple[str, ...] = ("access_token",)
    elif hint == "refresh_token":
        lookups = ("refresh_token", "access_token")
    else:
        lookups = ("access_token", "refresh_token")
    for kind in lookups:
        if kind == "refresh_token":
            grant = await state.find_refresh_token(raw)
            if grant is not None and not await state.is_grant_revoked(grant.grant_id):
                return IssuedToken(raw, refresh=grant)
        else:
            try:
                return IssuedToken(raw, access=await minter.check_access_token(raw))
            except InvalidToken:
                continue
    return None
