"""The provider's Authlib authorization server: grants, client lookup, token issuance and storage.

Authlib has no Starlette adapter; this is ours (compare Authlib's Flask integration): it takes a
finished ``ProviderRequest``, answers with Starlette responses, finds clients in the registry and
keeps refresh tokens in the state store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidRequestError,
    OAuth2Error,
    UnsupportedResponseTypeError,
)
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.responses import Response

from kubeoidc_contract import PRIVATE_KEY_JWT_AUTH_METHOD, SERVICE_ACCOUNT_AUTH_METHOD
from kubeoidc_provider.client_assertions import authenticate_by_assertion
from kubeoidc_provider.device_codes import DeviceCodes
from kubeoidc_provider.device_grant import DeviceCodeGrant
from kubeoidc_provider.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    EndUser,
    OpenIDCodeFlow,
    OpenIDDeviceFlow,
    OpenIDRefresh,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from kubeoidc_provider.identity.directory import Directory
from kubeoidc_provider.jsonutil import dump_json
from kubeoidc_provider.oauth_client import OAuthClient
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.state import RefreshGrant, State, new_token, wait_on
from kubeoidc_provider.tokens import IssuedAccessToken, TokenMinter, client_subject
from kubeoidc_provider.users import UserDirectory


class ProviderServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's ``AuthorizationServer`` wired to the registry, the state store and the key set."""

    def __init__(
        self,
        *,
        settings: ProviderSettings,
        registry: ClientRegistry,
        state: State,
        users: UserDirectory,
        minter: TokenMinter,
        directory: Directory,
    ) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.registry = registry
        self.state = state
        self.users = users
        self.minter = minter
        self.devices = DeviceCodes(state.storage)
        self.directory = directory
        self.register_token_generator("default", self._generate_token)
        # The token request being answered on this worker thread: Authlib hands the token generator
        # no request, and the audience comes from its resource parameters (RFC 8707).
        self._answering = threading.local()
        self.register_client_auth_method("client_secret_basic", _authenticate_basic)
        self.register_client_auth_method(SERVICE_ACCOUNT_AUTH_METHOD, authenticate_by_assertion)
        self.register_client_auth_method(PRIVATE_KEY_JWT_AUTH_METHOD, authenticate_by_assertion)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDCodeFlow(self)])
        self.register_grant(RefreshTokenGrant, [OpenIDRefresh(self)])
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(DeviceCodeGrant, [OpenIDDeviceFlow(self)])

    # Authlib's framework hooks ----------------------------------------------------------------------
    def query_client(self, client_id: str) -> OAuthClient | None:
        client = self.registry.get(client_id)
        return OAuthClient(client) if client is not None else None

    def get_authorization_grant(self, request: ProviderRequest) -> Any:
        """The code grant for ``response_type=code``; any other type is ``unsupported_response_type``.

        Authlib's own refusal writes the response type into the error description, swapping its
        arguments, and cannot be built at all (a ValueError: a 500) when the type holds a quote, a
        backslash or non-ASCII (RFC 6749 §4.1.2.1). Ours echoes nothing, and as Authlib's goes back
        only to a redirect URI the client registered.
        """
        if AuthorizationCodeGrant.check_authorization_endpoint(request):
            return super().get_authorization_grant(request)
        client = self.query_client(request.payload.client_id or "")
        if client is None:
            # Checked first, as the code grant does: without a client nothing else can be trusted.
            raise InvalidClientError(description="The client does not exist on this server.")
        redirect_uri = request.payload.redirect_uri
        trusted = bool(redirect_uri) and client.check_redirect_uri(redirect_uri)
        if not request.payload.response_type:
            raise InvalidRequestError(
                "Missing 'response_type' parameter.", redirect_uri=redirect_uri if trusted else None
            )
        raise UnsupportedResponseTypeError(
            request.payload.response_type or "",  # shown, escaped, on the error page only
            "Only 'response_type=code' is supported.",
            redirect_uri=redirect_uri if trusted else None,
        )

    def authenticate_client(
        self, request: ProviderRequest, methods: list[str], endpoint: str = "token"
    ) -> Any:
        """Authlib's client authentication, with a description that does not list Python values, and
        refusing a request that authenticates twice (RFC 6749 §2.3)."""
        _refuse_two_methods(request)
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.description = (
                request.assertion_error
                or "Client authentication failed (unknown client, wrong secret or method)."
            )
            raise

    def create_token_response(self, request: ProviderRequest | None = None) -> Response:
        self._answering.request = request
        try:
            response: Response = super().create_token_response(request)
        finally:
            self._answering.request = None
        return response

    def create_oauth2_request(self, request: ProviderRequest) -> ProviderRequest:
        return request

    def handle_response(self, status_code: int, payload: Any, headers: Sequence[tuple[str, str]]) -> Response:
        body = dump_json(payload) if isinstance(payload, dict) else payload
        return Response(body, status_code=status_code, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # Tokens -----------------------------------------------------------------------------------------
    def _generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: EndUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        request: ProviderRequest | None = getattr(self._answering, "request", None)
        return self.token_body(
            client, user, scope, include_refresh_token=include_refresh_token, request=request
        )

    def token_body(
        self,
        client: OAuthClient,
        user: EndUser | None,
        scope: str | None,
        *,
        include_refresh_token: bool,
        request: ProviderRequest | None,
    ) -> dict[str, Any]:
        """The token response's body (RFC 6749 §5.1) for ``client``, and ``user`` if any; an opaque access
        token is left on ``request`` for the token endpoint to store."""
        resources = request.payload.datalist.get("resource", []) if request is not None else []
        token, issued = self.issue_token(client, user, scope, resources=resources)
        if request is not None and issued.stored_claims is not None:
            # Stored by the token endpoint once Authlib returns, before the response leaves.
            request.issued_access_token = issued
        if include_refresh_token and user is not None:
            token["refresh_token"] = new_token()
        return token

    def issue_token(
        self, client: OAuthClient, user: EndUser | None, scope: str | None, *, resources: Sequence[str] = ()
    ) -> tuple[dict[str, Any], IssuedAccessToken]:
        """An access token for ``client`` (and ``user``, if any) with the granted ``scope`` and the
        requested ``resources``: the token response's body without a refresh token, and the token
        (an opaque one's claims must be stored before the body leaves). Any thread: it may sign."""
        client_id = client.get_client_id()
        registration = client.client
        issued = self.minter.access_token(
            client_id=client_id,
            client_uid=registration.uid,
            subject=user.user.id if user else client_subject(client_id),
            scope=scope or "",
            grant_id=user.grant_id if user else None,
            auth_time=user.auth_time if user else None,
            userinfo_claims=user.claims.userinfo if user else (),
            audience=_audience(client, resources),
            alg=registration.access_token_signed_response_alg,
            token_format=registration.access_token_format,
        )
        token: dict[str, Any] = {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": self.settings.access_token_ttl,
        }
        if scope:
            token["scope"] = scope
        return token, issued

    def save_token(self, token: dict[str, Any], request: ProviderRequest) -> None:
        refresh_token = token.get("refresh_token")
        if not refresh_token:
            return
        previous: RefreshGrant | None = getattr(request, "refresh_grant", None)
        grant, ttl = self.refresh_grant(request.client, request.user, token.get("scope", ""), previous)
        # Authlib calls this hook on the token endpoint's worker thread (see grants._wait).
        assert request.loop is not None
        wait_on(request.loop, self.state.save_refresh_token(refresh_token, grant, ttl))

    def refresh_grant(
        self, client: OAuthClient, end_user: EndUser, scope: str, previous: RefreshGrant | None
    ) -> tuple[RefreshGrant, int]:
        """What a refresh token issued with ``scope`` stands for, and how many seconds it is kept:
        a new grant's, or the successor of ``previous`` (rotation)."""
        now = int(time.time())
        # The grant's lifetime is fixed when it starts: rotation never extends it.
        expires_at = previous.expires_at if previous else now + self.settings.refresh_token_ttl
        grant = RefreshGrant(
            client_id=client.get_client_id(),
            client_uid=client.client.uid,
            # RFC 6749 §6: a refresh may narrow the new access token, never the grant: the next
            # refresh may ask for the original scope again.
            scope=previous.scope if previous else scope,
            user_id=end_user.user.id,
            auth_time=end_user.auth_time,
            grant_id=end_user.grant_id,
            expires_at=expires_at,
            issued_at=now,
            extra={"sid": end_user.sid, "claims": end_user.claims.to_json()},
        )
        return grant, max(expires_at - now, 1)

    async def save_issued_code(self, request: ProviderRequest) -> None:
        """Store the code an authorization response carries (the grant left it on the request)."""
        if request.issued_code is not None:
            code, grant = request.issued_code
            await self.state.save_code(code, grant, self.settings.code_ttl)


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: a requested resource is not one the client may have tokens for."""

    error = "invalid_target"


def _audience(client: OAuthClient, resources: Sequence[str]) -> tuple[str, ...]:
    """The requested resources, each registered in the client's ``audiences``; without a request, all
    of them (empty: the issuer)."""
    if not resources:
        return client.client.audiences
    if not set(resources) <= set(client.client.audiences):
        raise InvalidTargetError(description="A 'resource' is not one of the client's audiences.")
    return tuple(dict.fromkeys(resources))


#: Body parameters that authenticate a client (RFC 6749 §2.3.1, RFC 7523 §2.2).
_BODY_CREDENTIALS = ("client_secret", "client_assertion")


def _authenticate_basic(query_client: Any, request: ProviderRequest) -> OAuthClient | None:
    """Authlib's ``client_secret_basic``, where credentials that are not ASCII base64 of UTF-8 name no
    client.

    Authlib decodes the Basic credentials without catching a non-ASCII header (a ValueError) or bytes
    that are not UTF-8 (a UnicodeDecodeError): a 500 otherwise, where the client must get 401.
    """
    try:
        client: OAuthClient | None = authenticate_client_secret_basic(query_client, request)
    except ValueError:
        return None
    return client


def basic_client_id(request: ProviderRequest) -> str | None:
    """The client ID of the request's HTTP Basic credentials, or None without (readable) ones."""
    try:
        client_id, _ = extract_basic_authorization(request.headers)
    except ValueError:
        return None
    return client_id if isinstance(client_id, str) else None


def _refuse_two_methods(request: ProviderRequest) -> None:
    """``invalid_request`` for Basic credentials beside credentials in the body, or beside a body
    ``client_id`` naming another client (RFC 6749 §2.3: one method per request). A body ``client_id``
    equal to the Basic one is tolerated: relying parties (pyoidc) add it to code exchanges."""
    basic_id = basic_client_id(request)
    if basic_id is None:
        return
    form = request.form
    if any(name in form for name in _BODY_CREDENTIALS) or form.get("client_id", basic_id) != basic_id:
        raise InvalidRequestError(
            "The client authenticated with HTTP Basic and in the request body: "
            "use one method per request (RFC 6749 section 2.3)."
        )
