"""``GET``/``POST /logout``: RP-Initiated Logout 1.0, with Front-Channel Logout 1.0's frames.

The request is checked before anything happens; a bad one is an error page (400) that names the
problem, and nobody is signed out (§4: no redirection either):
- an ``id_token_hint`` that is not an ID token this provider signed (malformed, badly signed, another
  issuer's), or that was issued to no client of this provider, or to another than ``client_id`` (§2);
- a ``post_logout_redirect_uri`` that is not an absolute URI, that names no client (neither
  ``client_id`` nor the hint's audience says whose it is), or that is not one of that client's
  registered ``postLogoutRedirectURIs``, compared exactly (§3);
- an unknown ``client_id``.

The user is asked first (a page with a CSRF-protected form) unless the hint's ``sub`` is the user
signed in now: without a hint, any site could sign the user out (§6). Confirming posts the same
parameters back. The browser then goes to the ``post_logout_redirect_uri`` with ``state`` (§3) when
the hint vouched for it, else to the provider's signed-out page. ``logout_hint`` and ``ui_locales`` are
accepted (there is one user per browser session, and one language).

Ending the session tells every client it signed in to: by a logout token on the back channel, and, for
clients with a ``frontchannelLogoutURI``, by framing that page in the signed-out page, which then goes
on to the ``post_logout_redirect_uri`` once the frames have loaded (see ``frontchannel``).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from starlette.requests import Request
from starlette.responses import Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.form import read_page_form, repeated_parameter
from kubeoidc_provider.frontchannel import frame_sources, logout_frames
from kubeoidc_provider.keys import InvalidTokenError
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.sessions import BrowserSession
from kubeoidc_provider.tokens import TokenMinter

#: The confirmation form's own fields, beside the logout request's parameters it carries.
FORM_FIELDS = ("confirm", "csrf_token")
#: How long the signed-out page waits for the front-channel frames before going on regardless.
FRAMES_WAIT_MS = 5000


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    def validate_request(self, request: ProviderRequest) -> EndSessionRequest:
        """Authlib's checks (§2, §3), with a refusal instead of a silent "no redirection" for a
        ``post_logout_redirect_uri`` that cannot be followed, and for an unknown ``client_id``."""
        data = request.payload.data
        uri = data.get("post_logout_redirect_uri")
        if uri is not None and not _is_absolute_uri(uri):
            raise InvalidRequestError("The 'post_logout_redirect_uri' is not an absolute URI.")
        client_id = data.get("client_id")
        if client_id and self.server.query_client(client_id) is None:
            raise InvalidRequestError("The 'client_id' is not a client of this provider.")
        validated: EndSessionRequest = super().validate_request(request)
        if uri is not None:
            if validated.client is None:
                raise InvalidRequestError(
                    "The 'post_logout_redirect_uri' cannot be checked: send the 'client_id' or an "
                    "'id_token_hint' of the client that registered it."
                )
            if not validated.client.client.check_post_logout_redirect_uri(uri):
                raise InvalidRequestError(
                    "The 'post_logout_redirect_uri' is not registered for this client: it must be one "
                    "of its postLogoutRedirectURIs, exactly."
                )
        return validated

    def _validate_id_token_hint(self, id_token_hint: str) -> dict[str, Any]:
        """An ID token of ours (§2: the OP MUST validate that it issued it), even if expired, issued to
        one of our clients.

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
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not any(
            isinstance(aud, str) and self.server.query_client(aud) is not None for aud in audiences
        ):
            raise InvalidRequestError("The 'id_token_hint' was not issued to a client of this provider.")
        return claims

    def end_session(self, end_session_request: Any) -> None:
        # The browser session is ended by the endpoint below, which owns the cookie.
        return None


async def end_session(request: Request) -> Response:
    provider = provider_of(request)
    if request.method == "POST":
        params = [
            (key, value)
            for key, value in (await read_page_form(request)).multi_items()
            if isinstance(value, str)
        ]
    else:
        params = list(request.query_params.multi_items())
    if (repeated := repeated_parameter(params)) is not None:
        return provider.pages.error(
            400, "Sign-out request refused", f"Multiple {repeated!r} in request.", "invalid_request"
        )
    session = await provider.sessions.load(request)
    fields = dict(params)
    confirmed = request.method == "POST" and fields.get("confirm") == "yes"
    if confirmed and not provider.sessions.check_csrf(session, fields.get("csrf_token")):
        return provider.pages.error(403, "The form has expired", "Reload the page and try again.")
    logout_params = [(key, value) for key, value in params if key not in FORM_FIELDS]

    oauth_request = ProviderRequest("GET", provider.url("/logout"), request.headers, logout_params)
    try:
        validated = provider.server.validate_endpoint_request(EndSession.ENDPOINT_NAME, oauth_request)
    except OAuth2Error as error:
        return provider.pages.error(
            400, "Sign-out request refused", error.get_error_description(), error.error
        )
    if session is None or session.data.user_id is None:
        # Nobody to sign out: the relying party's own logout still completes.
        return _finished(provider, redirect_to=validated.redirect_uri)
    hint_sub = (validated.id_token_claims or {}).get("sub")
    # RP-Initiated Logout §6: without a hint for the user signed in now, the user is asked first.
    if not confirmed and hint_sub != session.data.user_id:
        return provider.pages.render(
            "logout.html",
            action=provider.url("/logout"),
            csrf_token=session.data.csrf_token,
            fields=logout_params,
            client=validated.client.client if validated.client is not None else None,
        )
    return await _signed_out(provider, session, redirect_to=validated.redirect_uri)


async def _signed_out(provider: Provider, session: BrowserSession, *, redirect_to: str | None) -> Response:
    """End the browser's session and tell every client it signed in to: logout tokens through the back
    channel, and frames of their front-channel pages on the page the browser gets."""
    sid = session.data.sid
    clients = await provider.state.end_session_clients(sid) if sid else None
    if sid:
        provider.backchannel.clients_signed_out(sid, clients)
    frames = logout_frames(provider.registry, provider.settings.issuer, clients, sid)
    response = _finished(provider, redirect_to=redirect_to, frames=frames)
    await provider.sessions.end(session, response)
    return response


def _finished(provider: Provider, *, redirect_to: str | None, frames: list[Any] | None = None) -> Response:
    """The answer once signed out: the post-logout redirect, or the signed-out page, which frames the
    clients' front-channel logout pages (and then goes on to the redirect, if there is one)."""
    if redirect_to and not frames:
        return Response(status_code=303, headers={"Location": redirect_to, "Cache-Control": "no-store"})
    if not frames:
        return provider.pages.render("logged_out.html")
    nonce = secrets.token_urlsafe(16)
    policy = (
        f"default-src 'none'; style-src 'self'; frame-src {frame_sources(frames)}; "
        f"script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return provider.pages.render(
        "logged_out.html", policy=policy, frames=frames, next=redirect_to, nonce=nonce, wait=FRAMES_WAIT_MS
    )


def _is_absolute_uri(uri: str) -> bool:
    """An absolute URI without a fragment or white space (what ``postLogoutRedirectURIs`` may hold)."""
    if not uri or "#" in uri or any(c.isspace() for c in uri):
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc or parts.path)
