"""Authlib's view of a registered client: the registry's ``Client`` behind Authlib's ``ClientMixin``."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin

from kubeoidc_contract import PRIVATE_KEY_JWT_AUTH_METHOD, SERVICE_ACCOUNT_AUTH_METHOD, crd
from kubeoidc_provider.registration import PUBLIC_AUTH_METHOD, Client

#: The client authentication methods a registration may name (the CRD's enumeration), in its order.
AUTH_METHODS: tuple[str, ...] = crd.auth_methods()
#: The methods of confidential clients: what they use wherever no method is registered for the endpoint
#: (introspection, revocation), and all the client credentials grant takes. A client authenticated by a
#: JWT assertion (ServiceAccount tokens, or its own key) uses only its registered method
#: (:data:`ASSERTION_AUTH_METHODS`); the others present a client secret.
SECRET_AUTH_METHODS: tuple[str, ...] = tuple(m for m in AUTH_METHODS if m != PUBLIC_AUTH_METHOD)
ASSERTION_AUTH_METHODS: frozenset[str] = frozenset({SERVICE_ACCOUNT_AUTH_METHOD, PRIVATE_KEY_JWT_AUTH_METHOD})


def granted_scope(requested: str | None, client: Client) -> str:
    """What a request asking for ``requested`` is granted: the scopes asked for that the client may have
    (``spec.scopes``), in the order asked, each once.

    The client's list holds only scopes the provider knows (the OpenID Connect ones, or the client's
    own API scopes), so this is the intersection of what is asked, what the client may have and what
    the provider knows. Any other scope is left out, never a reason to refuse the whole request (OIDC
    Core §3.1.2.1: unknown scope values SHOULD be ignored; RFC 6749 §3.3: the server may grant fewer
    scopes than asked, and the token response's ``scope`` then says which it granted).
    """
    allowed = frozenset(client.scopes)
    return " ".join(s for s in dict.fromkeys((requested or "").split()) if s in allowed)


class OAuthClient(ClientMixin):  # type: ignore[misc]
    """Answers Authlib's questions about a client from its registration, never from the request."""

    __slots__ = ("client",)

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED; never guess one for the client.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The scopes granted for a request asking for ``scope``: see :func:`granted_scope`."""
        return granted_scope(scope, self.client)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison against the canonical list (RFC 9700 §4.1.3): no prefix, no pattern;
        # only a loopback IP's port may differ (RFC 8252 §7.3).
        return self.client.check_redirect_uri(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret, time.time())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client.public:
            return method == PUBLIC_AUTH_METHOD and endpoint in ("token", "revocation")
        if endpoint == "token":
            return method == self.client.token_endpoint_auth_method
        if self.client.token_endpoint_auth_method in ASSERTION_AUTH_METHODS:
            return method == self.client.token_endpoint_auth_method
        return method in SECRET_AUTH_METHODS and method not in ASSERTION_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.client.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types

    @property
    def client_metadata(self) -> dict[str, Any]:
        """What Authlib's end-session endpoint reads (RP-Initiated Logout 1.0 §3)."""
        return {"post_logout_redirect_uris": list(self.client.post_logout_redirect_uris)}


def issued_to(client: OAuthClient, client_id: str, client_uid: str) -> bool:
    """Whether a code or token issued to (``client_id``, ``client_uid``) belongs to ``client``: the same
    client ID *and* the same OIDCClient, so a pinned ID freed and pinned again elsewhere inherits nothing."""
    return bool(client.get_client_id() == client_id and client.client.uid == client_uid)
