"""Minting and checking tokens: ID tokens (OIDC Core §2) and access tokens, JWT (RFC 9068) or opaque.

Refresh tokens are opaque and live in the state store. ID tokens are JWTs signed by the key set with the
client's algorithm. An access token is, per client (``accessTokenFormat``), either a JWT a resource
server can check offline against the JWKS, or an opaque reference: a random value whose claims the state
store keeps under its SHA-256 (never the token itself), found again at userinfo, introspection and
revocation. Both carry the same claims, so every check after the look-up is the same.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubeoidc_provider.keys import InvalidTokenError, KeySet, check_times
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import State, new_token

#: How many verified access tokens are remembered (a few MiB at most).
VERIFIED_TOKENS = 10_000
#: The JOSE ``typ`` of an access token, so it can never be taken for an ID token (RFC 9068 §2.1).
#: The ``sub`` of a token a client got for itself (client credentials) is its client ID behind this
#: prefix: a tenant may pin any client ID, but never one that reads as a user's subject.
CLIENT_SUBJECT_PREFIX = "client:"


def client_subject(client_id: str) -> str:
    """The subject of a client acting for itself, never equal to a user's."""
    return CLIENT_SUBJECT_PREFIX + client_id


ACCESS_TOKEN_TYP = "at+jwt"
_A = TypeVar("_A")
#: The access token's private claim naming the claims a ``claims`` request asked of userinfo.
USERINFO_CLAIMS = "userinfo_claims"


#: ``spec.accessTokenFormat`` of a client whose access tokens are references into the state store.
OPAQUE = "opaque"
#: Between the grant id and the random part of an opaque token (a JWS never holds it, a grant id never
#: does): the token names its grant, so its revocation is looked up beside the token, not after it.
_GRANT_SEPARATOR = "~"

#: The uid of the OIDCClient an access token was issued to: a client ID freed and pinned again by another
#: OIDCClient must not inherit the tokens still alive (the uid is an opaque identifier, nothing secret).
CLIENT_UID_CLAIM = "client_uid"


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """A new access token; for an opaque one, the claims the state store must keep before it is used."""

    value: str
    stored_claims: dict[str, Any] | None = None


class InvalidToken(Exception):
    """A bearer token that is malformed, badly signed, expired, revoked or not ours."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The checked claims of one of our access tokens."""

    claims: Mapping[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def client_uid(self) -> str | None:
        """The OIDCClient the token was issued to (None for a token minted before tokens named it)."""
        uid = self.claims.get(CLIENT_UID_CLAIM)
        return str(uid) if uid is not None else None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scope", "")).split())

    @property
    def userinfo_claims(self) -> tuple[str, ...]:
        return tuple(str(name) for name in self.claims.get(USERINFO_CLAIMS, ()))

    @property
    def has_user(self) -> bool:
        """False for client_credentials tokens, whose subject is the client itself (RFC 9068 §2.2)."""
        return "auth_time" in self.claims


class TokenMinter:
    """Signs tokens with the current key and checks the ones presented back to us."""

    def __init__(
        self, *, issuer: str, signing: SigningKeys, state: State, access_token_ttl: int, id_token_ttl: int
    ):
        self.issuer = issuer
        self.signing = signing
        self.state = state
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl
        # Access tokens whose signature was checked with ``_verified_by``; see ``_signed_claims``.
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._verified_by: KeySet | None = None

    @property
    def keys(self) -> KeySet:
        """The key set in use now: read per token, so a rotation applies to the next one."""
        return self.signing.keys

    def access_token(
        self,
        *,
        client_id: str,
        client_uid: str,
        subject: str,
        scope: str,
        grant_id: str | None,
        auth_time: int | None,
        userinfo_claims: tuple[str, ...] = (),
        audience: tuple[str, ...] = (),
        alg: str | None = None,
        token_format: str = "jwt",
    ) -> IssuedAccessToken:
        """An access token: an RFC 9068 JWT signed with ``alg`` (None: the default algorithm), or for
        ``token_format`` ``opaque`` a random value and the claims to store for it (nothing signed).
        The ``jti`` carries the grant id, so revoking a grant revokes it. ``aud`` is ``audience`` (one
        string for one), or the issuer when it is empty."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": (audience[0] if len(audience) == 1 else list(audience)) if audience else self.issuer,
            "client_id": client_id,
            CLIENT_UID_CLAIM: client_uid,
            "iat": now,
            "exp": now + self.access_token_ttl,
            "jti": f"{grant_id}.{new_token(12)}" if grant_id else new_token(12),
        }
        if scope:
            claims["scope"] = scope
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if userinfo_claims:
            # The names the ``claims`` parameter asked of userinfo (OIDC Core §5.5), for that endpoint.
            claims[USERINFO_CLAIMS] = list(userinfo_claims)
        if token_format == OPAQUE:
            value = f"{grant_id}{_GRANT_SEPARATOR}{new_token()}" if grant_id else new_token()
            return IssuedAccessToken(value, claims)
        return IssuedAccessToken(self.keys.sign(claims, typ=ACCESS_TOKEN_TYP, alg=alg))

    def id_token(
        self,
        *,
        client_id: str,
        user_claims: Mapping[str, Any],
        auth_time: int,
        nonce: str | None,
        access_token: str | None,
        session: tuple[str | None, str, tuple[str, ...]] | None = None,
        alg: str | None = None,
    ) -> str:
        """An ID token (OIDC Core §2, §3.1.3.6 for ``at_hash``) carrying the granted scopes' claims.

        ``session``: the browser session's ``sid`` (Back-Channel Logout 1.0 §2.4), the ``acr`` and the
        ``amr`` of the login behind the token. ``alg``: the client's algorithm (None: the default).
        """
        now = int(time.time())
        claims: dict[str, Any] = dict(user_claims)
        claims.update(
            iss=self.issuer, aud=client_id, iat=now, exp=now + self.id_token_ttl, auth_time=auth_time
        )
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = self.keys.hash_half(access_token, alg)
        if session is not None:
            sid, acr, amr = session
            claims.update(acr=acr, amr=list(amr))
            if sid:
                claims["sid"] = sid
        return self.keys.sign(claims, typ="JWT", alg=alg)

    async def check_access_token(self, token: str) -> AccessToken:
        """Verify signature, type, issuer, lifetime and revocation of an access token."""
        if "." in token:
            claims = self._checked(self._signed_claims, token)
            jti = str(claims.get("jti", ""))
            grant_id, _, _ = jti.rpartition(".")
            # A JWT cannot be taken back: its jti is listed as revoked until it would have expired.
            revoked = await _any(self.state.is_access_token_revoked(jti), self._grant_revoked(grant_id))
        else:
            # A revoked opaque token is deleted from the store, so it is found no more; the grant it
            # names is looked up at the same time (a stored token always belongs to that grant: the
            # grant id is part of the value whose hash is the key).
            grant_id, _, _ = token.rpartition(_GRANT_SEPARATOR)
            stored, revoked = await asyncio.gather(
                self.state.find_access_token(token), self._grant_revoked(grant_id)
            )
            claims = self._checked(_found, stored)
        if revoked:
            raise InvalidToken("the access token was revoked")
        return AccessToken(claims)

    def _checked(self, read: Callable[[_A], dict[str, Any]], source: _A) -> dict[str, Any]:
        """The claims ``read`` finds, if they are this issuer's and live now; else InvalidToken."""
        try:
            claims = read(source)
            check_times(claims, time.time())
        except InvalidTokenError as error:
            raise InvalidToken(f"the access token is not valid: {error}") from error
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token is not an access token of this issuer")
        return claims

    async def _grant_revoked(self, grant_id: str) -> bool:
        return bool(grant_id) and await self.state.is_grant_revoked(grant_id)

    async def save_opaque(self, token: IssuedAccessToken) -> None:
        """Keep an opaque token's claims (under its hash) until it expires; a JWT needs nothing."""
        if token.stored_claims is not None:
            await self.state.save_access_token(token.value, token.stored_claims, self.access_token_ttl)

    def _signed_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature and type are ours, remembered for the next time.

        A resource server asks about the same token again and again (userinfo, introspection): the
        RSA verification, most of such a request's cost, is done once per token. Lifetime and
        revocation are checked by the caller on every request; a key rotation forgets everything.
        """
        keys = self.keys
        if self._verified_by is not keys:
            self._verified = OrderedDict()
            self._verified_by = keys
        claims = self._verified.get(token)
        if claims is None:
            claims = keys.verify(token, typ=ACCESS_TOKEN_TYP)
            self._verified[token] = claims
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return claims


def _found(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The claims kept for an opaque access token (a compact JWS always has dots; these never do)."""
    if stored is None:
        raise InvalidTokenError("unknown or expired access token")
    return stored


async def _any(*checks: Coroutine[Any, Any, bool]) -> bool:
    """Whether any of the checks is true; they run at the same time."""
    return any(await asyncio.gather(*checks))


def scope_list(scope: str | None) -> list[str]:
    return scope.split() if scope else []


def join_scopes(scopes: Iterable[str]) -> str:
    return " ".join(scopes)
