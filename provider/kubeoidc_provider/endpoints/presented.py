"""What revocation (RFC 7009) and introspection (RFC 7662) share: a client presents one of our tokens.

Authlib's endpoints look the token up (``query_token``) and revoke it (``revoke_token``) synchronously;
our state is asynchronous. So the token is looked up before Authlib runs (a read: nothing changes if the
client then fails to authenticate), and what Authlib decides to revoke is revoked after it returns,
before the response leaves. Authlib runs on the event loop's thread in between, without awaiting, so a
context variable carries the token found to ``query_token``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import UnsupportedTokenTypeError as AuthlibUnsupportedTokenTypeError
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.form import read_oauth_request
from kubeoidc_provider.issued import IssuedToken, find_issued_token
from kubeoidc_provider.oauth_request import ProviderRequest

_FOUND: contextvars.ContextVar[tuple[str, IssuedToken | None]] = contextvars.ContextVar("presented_token")

#: What to do after Authlib's endpoint returned: e.g. revoke the token it chose to revoke.
After = Callable[[Provider, ProviderRequest], Awaitable[None]]


class UnsupportedTokenTypeError(OAuth2Error):  # type: ignore[misc]
    """A ``token_type_hint`` this provider does not know (RFC 7009 §2.2.1): an error response as RFC 6749
    §5.2 has them, 400. Authlib's is a 401, which says the client failed to authenticate."""

    error = "unsupported_token_type"
    status_code = 400


class PresentedTokenEndpoint:
    """Mixin for an Authlib token endpoint: ``query_token`` answers with the token looked up before."""

    def check_params(self, request: ProviderRequest, client: Any) -> None:
        try:
            super().check_params(request, client)  # type: ignore[misc]
        except AuthlibUnsupportedTokenTypeError:
            raise UnsupportedTokenTypeError(
                "The 'token_type_hint' must be access_token or refresh_token."
            ) from None

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        raw, token = _FOUND.get(("", None))
        return token if raw and raw == token_string else None


def presented_token_endpoint(
    name: str, path: str, after: After | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for the Authlib endpoint registered as ``name``, served at ``path``."""

    async def endpoint(request: Request) -> Response:
        provider = provider_of(request)
        oauth_request = await read_oauth_request(provider, request, path)
        if isinstance(oauth_request, Response):
            return oauth_request
        raw = oauth_request.form.get("token", "")
        hint = oauth_request.form.get("token_type_hint")
        found = await find_issued_token(provider.state, provider.minter, raw, hint) if raw else None
        reset = _FOUND.set((raw, found))
        try:
            response: Response = provider.server.create_endpoint_response(name, oauth_request)
        finally:
            _FOUND.reset(reset)
        if after is not None:
            await after(provider, oauth_request)
        return response

    return endpoint
