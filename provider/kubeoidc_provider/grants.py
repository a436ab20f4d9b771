"""The grants the token and authorize endpoints accept, as Authlib grants extended by hooks.

- authorization code (RFC 6749 §4.1) with PKCE S256 (RFC 7636; ``plain`` refused, required for public
  clients) and OpenID Connect (OIDC Core §3.1): codes are single-use through an atomic consume, and a
  replayed code revokes everything it issued (RFC 6749 §4.1.2);
- refresh token (RFC 6749 §6) with rotation: each use spends the token and issues a successor; reuse
  of a spent one revokes the whole grant (RFC 9700 §4.14.2);
- client credentials (RFC 6749 §4.4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken

from kubeoidc_contract import crd
from kubeoidc_provider.claims_request import ClaimsRequest
from kubeoidc_provider.identity.directory import Directory
from kubeoidc_provider.metadata import ACR as AUTHENTICATION_CONTEXT
from kubeoidc_provider.oauth_client import AUTH_METHODS, SECRET_AUTH_METHODS, issued_to
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.state import CodeGrant, RefreshGrant, Spent, State, new_token, wait_on
from kubeoidc_provider.tokens import TokenMinter
from kubeoidc_provider.users import User, UserDirectory

if TYPE_CHECKING:
    from kubeoidc_provider.oauth_request import ProviderRequest

logger = logging.getLogger(__name__)

#: How users authenticate (RFC 8176 ``amr``): a password.
AUTHENTICATION_METHODS = ("pwd",)
#: The scope claims an ID token carries beside an access token without being asked by name (the CRD's
#: ``idTokenClaims`` choices); the others (``given_name``, ``address``, ``phone_number``, ...) are
#: served by userinfo, or put in the ID token by a ``claims`` request.
ID_TOKEN_CLAIMS = frozenset(crd.id_token_claims())
#: Scopes that only mean something when a user takes part: an ID token, a refresh token.
USER_SCOPES = frozenset({"openid", "offline_access"})


@dataclass(frozen=True, slots=True)
class EndUser:
    """The user on whose behalf tokens are issued, with the authorization they belong to."""

    user: User
    auth_time: int
    grant_id: str
    #: The browser session's ``sid`` (Back-Channel Logout 1.0 §2.4), when the grant came from one.
    sid: str | None = None
    #: Claims asked for one by one (the ``claims`` parameter, OIDC Core §5.5).
    claims: ClaimsRequest = field(default_factory=ClaimsRequest)


class _CodeRecord:
    """Authlib's view of a spent authorization code (``AuthorizationCodeMixin``)."""

    __slots__ = ("grant",)

    def __init__(self, grant: CodeGrant) -> None:
        self.grant = grant

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope

    def get_nonce(self) -> str | None:
        return self.grant.nonce

    def get_auth_time(self) -> int:
        return self.grant.auth_time

    def get_acr(self) -> str:
        return AUTHENTICATION_CONTEXT

    def get_amr(self) -> list[str]:
        return list(AUTHENTICATION_METHODS)

    @property
    def code_challenge(self) -> str | None:
        return self.grant.code_challenge

    @property
    def code_challenge_method(self) -> str | None:
        return self.grant.code_challenge_method


class _RefreshRecord:
    """Authlib's view of a spent refresh token (``TokenMixin``)."""

    __slots__ = ("grant",)

    def __init__(self, grant: RefreshGrant) -> None:
        self.grant = grant

    def check_client(self, client: Any) -> bool:
        return issued_to(client, self.grant.client_id, self.grant.client_uid)

    def get_scope(self) -> str:
        return self.grant.scope


class GrantServer(Protocol):
    """What the grants use of the authorization server that registers them (it passes itself).

    A protocol, not the server's class: the server imports the grants, never the other way round.
    """

    settings: ProviderSettings
    state: State
    users: UserDirectory
    minter: TokenMinter
    directory: Directory


def _server(grant: Any) -> GrantServer:
    server: GrantServer = grant.server
    return server


_G = TypeVar("_G", CodeGrant, RefreshGrant)
_T = TypeVar("_T")


def _wait(request: ProviderRequest, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """A state coroutine's result, for a hook Authlib calls synchronously on the token endpoint's thread."""
    if request.loop is None:
        coroutine.close()
        raise RuntimeError("the token endpoint runs Authlib on a worker thread and sets request.loop")
    return wait_on(request.loop, coroutine)


def _first_use(
    server: GrantServer, request: ProviderRequest, spent: tuple[_G, Spent] | None, what: str
) -> _G | None:
    """The grant of a single-use value just spent; None when unknown, or on a replay, which revokes
    everything the first use issued (RFC 6749 §4.1.2 for codes, RFC 9700 §4.14.2 for refresh tokens)."""
    if spent is None:
        return None
    grant, outcome = spent
    if not outcome.first:
        _wait(request, server.state.revoke_grant(outcome.grant_id, server.settings.refresh_token_ttl))
        logger.warning("%s replayed by client %s: its grant is revoked", what, grant.client_id)
        return None
    return grant


def _find_user(grant: Any, subject: str) -> User | None:
    """The user a grant was for: a static user at once, a source's person from the state store."""
    directory = _server(grant).directory
    known, user = directory.find_static(subject)
    return user if known else _wait(grant.request, directory.find(subject))


@dataclass(frozen=True, slots=True)
class EarlySpend:
    """A code the token endpoint spent on the event loop before Authlib ran, and the outcome."""

    # Kept out of the repr: it travels in the ASGI scope, which an error reporter may print.
    code: str = field(repr=False)
    spent: tuple[CodeGrant, Spent] | None


async def spend_code_early(state: State, registry_client: Any, code: str | None) -> EarlySpend | None:
    """Spend the code of an exchange on the loop, so the grant need not wait for the state store.

    Only for a request the grant would spend the code for anyway: a client authenticated here as
    Authlib authenticates it (HTTP Basic and the right secret, ``registry_client`` being the client the
    credentials name, else None) and allowed the grant, with a code. Anything else is left to the grant
    (None).
    """
    if registry_client is None or not code or "authorization_code" not in registry_client.grant_types:
        return None
    return EarlySpend(code, await state.spend_code(code))


def answers_without_waiting(directory: Directory, request: ProviderRequest) -> bool:
    """Whether the code exchange's grant will not wait on the state store: its code spent early for the
    first time, a static user, and no refresh token to store."""
    early: EarlySpend | None = request.early_spend
    if early is None or early.spent is None or not early.spent[1].first:
        return False
    client = request.client_registration
    return (
        client is not None
        and "refresh_token" not in client.grant_types
        and directory.find_static(early.spent[0].user_id)[0]
    )


def code_end_user(grant: CodeGrant, user: User) -> EndUser:
    """The user a code was issued for, with the authorization the code stands for."""
    return EndUser(user, grant.auth_time, grant.grant_id, grant.sid, ClaimsRequest.from_json(grant.claims))


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """RFC 6749 §4.1, storing codes by hash and spending them atomically."""

    # Every method a registration may name; which one a given client must use is its registration's
    # ``tokenEndpointAuthMethod`` (see OAuthClient).
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    @staticmethod
    def validate_authorization_redirect_uri(request: ProviderRequest, client: Any) -> str:
        """Authlib's check, with a refusal that does not echo the URI.

        Authlib writes the refused URI into the error description, and refuses (a ValueError: a 500)
        to build one holding a quote, a backslash or non-ASCII (RFC 6749 §4.1.2.1); nor has an
        attacker's URL any place on our error page.
        """
        redirect_uri = request.payload.redirect_uri
        if redirect_uri and not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError(
                "The 'redirect_uri' is not one of the client's registered redirect URIs."
            )
        validated: str = grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)
        return validated

    def save_authorization_code(self, code: str, request: ProviderRequest) -> None:
        end_user: EndUser = request.user
        data = request.payload.data
        grant = CodeGrant(
            client_id=request.client.get_client_id(),
            client_uid=request.client.client.uid,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user_id=end_user.user.id,
            auth_time=end_user.auth_time,
            grant_id=new_token(12),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            sid=end_user.sid,
            claims=end_user.claims.to_json() if end_user.claims != ClaimsRequest() else None,
        )
        # Stored by the authorization endpoint once Authlib returns (ProviderServer.save_issued_code).
        request.issued_code = (code, grant)

    def query_authorization_code(self, code: str, client: Any) -> _CodeRecord | None:
        server = _server(self)
        # Spent before the client and PKCE checks, on purpose: a code presented by the wrong client or
        # with the wrong verifier has leaked, so it is burnt, and a later use counts as a replay.
        # Usually spent already, on the loop, by spend_code_early (after the same client authentication).
        early: EarlySpend | None = self.request.early_spend
        spent = early.spent if early is not None and early.code == code else None
        if spent is None and (early is None or early.code != code):
            spent = _wait(self.request, server.state.spend_code(code))
        grant = _first_use(server, self.request, spent, "authorization code")
        if grant is None or not issued_to(client, grant.client_id, grant.client_uid):
            return None
        return _CodeRecord(grant)

    def delete_authorization_code(self, authorization_code: _CodeRecord) -> None:
        # Already spent atomically in query_authorization_code; the spent entry stays until it expires
        # so that a replay is recognised.
        return None

    def authenticate_user(self, authorization_code: _CodeRecord) -> EndUser | None:
        grant = authorization_code.grant
        user = _find_user(self, grant.user_id)
        return code_end_user(grant, user) if user else None


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """RFC 6749 §6 with rotation and reuse detection."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshRecord | None:
        server = _server(self)
        spent = _wait(self.request, server.state.spend_refresh_token(refresh_token))
        grant = _first_use(server, self.request, spent, "refresh token")
        if grant is None:
            return None
        if (
            _wait(self.request, server.state.is_grant_revoked(grant.grant_id))
            or grant.expires_at <= time.time()
        ):
            return None
        self.request.refresh_grant = grant
        return _RefreshRecord(grant)

    def authenticate_user(self, refresh_token: _RefreshRecord) -> EndUser | None:
        grant = refresh_token.grant
        user = _find_user(self, grant.user_id)
        if user is None:
            return None
        claims = ClaimsRequest.from_json(grant.extra.get("claims"))
        return EndUser(user, grant.auth_time, grant.grant_id, grant.extra.get("sid"), claims)

    def issue_token(self, user: EndUser, refresh_token: _RefreshRecord) -> dict[str, Any]:
        """Tokens for the scope asked for (Authlib has refused one wider than the grant, RFC 6749 §6)
        or else the grant's, less any scope the client may no longer have: the response's ``scope``
        says what is granted now (§3.3)."""
        requested = self.request.payload.scope or refresh_token.get_scope()
        scope = self.request.client.get_allowed_scope(requested)
        token: dict[str, Any] = self.generate_token(
            user=user, scope=scope, include_refresh_token=self.INCLUDE_NEW_REFRESH_TOKEN
        )
        return token

    def revoke_old_credential(self, refresh_token: _RefreshRecord) -> None:
        # Spent atomically in authenticate_refresh_token; kept until expiry to detect reuse.
        return None


def client_credentials_scope(client: Any, requested: str | None) -> str:
    """The scope a client credentials request is granted: what the client may have of what it asks,
    without the scopes that stand for a user (an ID token, a refresh token), left out like any other
    scope this grant cannot give (RFC 6749 §3.3)."""
    granted = client.get_allowed_scope(requested).split()
    return " ".join(s for s in granted if s not in USER_SCOPES)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """RFC 6749 §4.4: tokens for the client itself, limited to the client's own scopes."""

    # Authlib's default is client_secret_basic only; the registration's method decides (OAuthClient).
    TOKEN_ENDPOINT_AUTH_METHODS = list(SECRET_AUTH_METHODS)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        self.request.scope = client_credentials_scope(self.request.client, self.request.payload.scope)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Authlib's response, with the granted scope instead of the requested one (RFC 6749 §3.3)."""
        token: dict[str, Any] = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only: ``plain`` is refused; public clients must use it, and confidential ones too
    unless ``require_pkce`` is off (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "plain"  # RFC 7636 §4.3: absent means plain, which we refuse.

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge and grant.request.client.client.public:
            raise InvalidRequestError("Public clients must send a PKCE 'code_challenge' (S256).")
        if not challenge and _server(grant).settings.require_pkce:
            raise InvalidRequestError("A PKCE 'code_challenge' (S256) is required.")
        if challenge and data.get("code_challenge_method", self.DEFAULT_CODE_CHALLENGE_METHOD) != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': only 'S256' is accepted.")
        super().validate_code_challenge(grant, redirect_uri)


def id_token_for(
    minter: TokenMinter,
    client: Any,
    end_user: EndUser,
    scope: str,
    *,
    nonce: str | None,
    access_token: str | None,
) -> str:
    """The ID token a token response carries for ``end_user`` with the granted ``scope`` (OIDC Core
    §3.1.3.6), signed with the client's algorithm; ``nonce`` is the authorization request's."""
    requested = end_user.claims.id_token
    user_claims = end_user.user.claims(scope.split(), requested)
    if access_token:
        # OIDC Core §5.4: with an access token, the scopes' claims are for userinfo. The ID token
        # keeps the few that logins read from it (kube-apiserver reads nothing else), narrowed by the
        # client's registration; a claim asked for by name in the ``claims`` parameter stays.
        allowed = client.client.id_token_claims
        in_id_token = ID_TOKEN_CLAIMS if allowed is None else allowed & ID_TOKEN_CLAIMS
        user_claims = {
            name: value
            for name, value in user_claims.items()
            if name == "sub" or name in in_id_token or name in requested
        }
    return minter.id_token(
        client_id=client.get_client_id(),
        user_claims=user_claims,
        auth_time=end_user.auth_time,
        nonce=nonce,
        access_token=access_token,
        session=(end_user.sid, AUTHENTICATION_CONTEXT, AUTHENTICATION_METHODS),
        alg=client.client.id_token_signed_response_alg,
    )


def verifier_matches(grant: CodeGrant, verifier: str | None) -> bool:
    """Whether a confidential client's ``code_verifier`` passes the grant's PKCE check (RFC 7636 §4.6)
    for the code's challenge: none without a challenge, the S256 one of it with one."""
    challenge = grant.code_challenge
    if not challenge:
        return verifier is None
    return (
        verifier is not None
        and grant.code_challenge_method == "S256"
        and CODE_VERIFIER_PATTERN.match(verifier) is not None
        and compare_s256_code_challenge(verifier, challenge)
    )


class _IdTokens:
    """Signs the ID token with the provider's key set instead of Authlib's per-request key import."""

    def encode_id_token(self, token: dict[str, Any], request: ProviderRequest) -> str:
        code = request.authorization_code
        return id_token_for(
            _server(self).minter,  # set by __call__ below
            request.client,
            request.user,
            token["scope"],
            nonce=code.get_nonce() if code is not None else None,
            access_token=token.get("access_token"),
        )


class OpenIDCodeFlow(_IdTokens, OpenIDCode):  # type: ignore[misc]
    """OIDC Core §3.1: adds the ID token to the code exchange."""

    def __init__(self, server: GrantServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: ProviderRequest) -> bool:
        # Nonce replay is the relying party's check (OIDC Core §3.1.3.7 step 11); the provider echoes it.
        return False


class OpenIDRefresh(_IdTokens, OpenIDToken):  # type: ignore[misc]
    """OIDC Core §12.2: a refreshed ID token for a grant that has the ``openid`` scope."""

    def __init__(self, server: GrantServer) -> None:
        self.server = server


class OpenIDDeviceFlow(OpenIDRefresh):
    """RFC 8628 with OpenID Connect: the device grant's token response carries an ID token for ``openid``."""
