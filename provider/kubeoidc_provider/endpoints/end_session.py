"""``GET``/``POST /logout``: RP-Initiated Logout 1.0.

With a valid ``id_token_hint`` the session ends at once, and the browser goes to the
``post_logout_redirect_uri`` only if it is in the client's registered list (exact match, §3), with
``state``. Without one, the user confirms on a page first, so that no other site can sign them out.
An invalid request shows an error page and never redirects (§4).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.rpinitiated import EndSessionEndpoint
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.keys import InvalidTokenError
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.tokens import TokenMinter


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    def _validate_id_token_hint(self, id_token_hint: str) -> dict[str, Any]:
        """An ID token of ours (§2: the OP MUST validate that it issued it), even if expired.

        Replaces Authlib's check, which puts the JOSE library's message, an echo of the token's
        header, into the error description (a 500 when that holds a quote or non-ASCII), accepts any
        JWT our keys signed, access tokens included, and warns on every EdDSA key.
        """
        minter: TokenMinter = self.server.minter
        try:
            claims = minter.keys.verify(id_token_hint, typ="JWT")
        except InvalidTokenError:
            claims = None
        if claims is None or claims.get("iss") != minter.issuer:
            raise InvalidRequestError("The 'id_token_hint' is not an ID token issued by this provider.")
        return claims

    def end_session(self, end_session_request: Any) -> None:
        # The browser session is ended by the endpoint below, which owns the cookie.
        return None


async def end_session(request: Request) -> Response:
    provider = provider_of(request)
    if request.method == "POST":
        params = [
            (key, value) for key, value in (await request.form()).multi_items() if isinstance(value, str)
        ]
    else:
        params = list(request.query_params.multi_items())
    session = await provider.sessions.load(request)
    if request.method == "POST" and dict(params).get("confirm") == "yes":
        if not provider.sessions.check_csrf(session, dict(params).get("csrf_token")):
            return provider.pages.error(403, "The form has expired", "Reload the page and try again.")
        return await _signed_out(provider, request, redirect_to=None)

    oauth_request = ProviderRequest("GET", provider.url("/logout"), request.headers, params)
    try:
        validated = provider.server.validate_endpoint_request(EndSession.ENDPOINT_NAME, oauth_request)
    except OAuth2Error as error:
        return provider.pages.error(
            400, "Sign-out request refused", error.get_error_description(), error.error
        )
    if validated.id_token_claims is None:
        if session is None or session.data.user_id is None:
            return provider.pages.render("logged_out.html")
        return provider.pages.render(
            "logout.html", action=provider.url("/logout"), csrf_token=session.data.csrf_token
        )
    return await _signed_out(provider, request, redirect_to=validated.redirect_uri)


async def _signed_out(provider: Provider, request: Request, *, redirect_to: str | None) -> Response:
    """End the browser's session and, through the back channel, every client's session it signed in to."""
    response: Response
    if redirect_to:
        response = Response(status_code=303, headers={"Location": redirect_to, "Cache-Control": "no-store"})
    else:
        response = provider.pages.render("logged_out.html")
    session = await provider.sessions.load(request)
    if session is not None:
        await provider.backchannel.session_ended(session.data.sid)
        await provider.sessions.end(session, response)
    return response
