"""The authorization endpoint (RFC 6749 §3.1, §4.1; OIDC Core §3.1.2) and the resumption after login.

A pipeline of small decisions:
1. Authlib validates the request: client, exact redirect URI, response type, scopes, PKCE, nonce.
   Until a redirect URI is trusted, every error is an error page (RFC 6749 §4.1.2.1); after, errors
   go back to the client with ``error``, ``state`` and ``iss`` (RFC 9207).
   Then the OpenID Connect parameters Authlib leaves alone (``request_checks``): ``request`` and
   ``request_uri`` are refused, ``claims`` parsed, ``response_mode`` checked, ``id_token_hint`` read.
2. Login: needed when there is no session user, on ``prompt=login`` or ``prompt=select_account``, when
   ``max_age`` is exceeded, or when ``id_token_hint`` names another user; ``prompt=none`` turns that
   need into ``login_required``.
3. Consent: needed when the user has not yet granted every requested scope to this client, or on
   ``prompt=consent``; ``prompt=none`` turns it into ``consent_required``.
4. Otherwise issue the code, remember that the session signed in to the client (for back-channel
   logout), and answer in the response mode asked for (a redirect, or an auto-submitted form).
Login and consent happen on their pages; the pending request waits in the state store as an
interaction bound to the browser's session, and ``/authorize/resume`` continues it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubeoidc_contract.issuer import is_loopback_host
from kubeoidc_provider.backchannel import EXPIRY_LOOKBACK
from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints import device, request_checks
from kubeoidc_provider.endpoints.form import read_page_form, repeated_parameter
from kubeoidc_provider.endpoints.form_post import form_post_response
from kubeoidc_provider.grants import EndUser
from kubeoidc_provider.oauth_request import ProviderRequest
from kubeoidc_provider.registration import Client
from kubeoidc_provider.sessions import BrowserSession
from kubeoidc_provider.state import Interaction, Session, new_token
from kubeoidc_provider.urls import add_query


async def authorize(request: Request) -> Response:
    """``GET`` or ``POST /authorize`` (OIDC Core §3.1.2.1 allows both)."""
    provider = provider_of(request)
    if request.method == "POST":
        params = list((await read_page_form(request)).multi_items())
    else:
        params = list(request.query_params.multi_items())
    pairs = [(key, value) for key, value in params if isinstance(value, str)]
    if (repeated := repeated_parameter(pairs)) is not None:
        # Shown, never redirected: the redirect URI itself may be the repeated one.
        return provider.pages.error(
            400, "Sign-in request refused", f"Multiple {repeated!r} in request.", "invalid_request"
        )
    return await continue_authorization(provider, request, await provider.sessions.load(request), pairs)


async def resume(request: Request) -> Response:
    """``GET /authorize/resume?interaction=…``: continue a request after the login or consent page."""
    provider = provider_of(request)
    session = await provider.sessions.load(request)
    interaction_id = request.query_params.get("interaction", "")
    interaction = await provider.state.get_interaction(interaction_id) if interaction_id else None
    if interaction is None or session is None or interaction.session_hash != session.hash:
        return expired_interaction(provider)
    if interaction.device_key is not None:
        return await device.continue_device(provider, session, interaction, interaction_id)
    return await continue_authorization(
        provider, request, session, list(interaction.params.items()), interaction, interaction_id
    )


def _identity_unproven(client: Client, redirect_uri: str) -> bool:
    """RFC 8252 §8.6: a public client redirecting to a loopback address or a private-use scheme can be
    impersonated by any local app, so a remembered consent never approves it without asking."""
    if not client.public:
        return False
    parts = urlsplit(redirect_uri)
    return parts.scheme != "https" or is_loopback_host(parts.hostname)


def expired_interaction(provider: Provider) -> Response:
    return provider.pages.error(
        400,
        "This sign-in request has expired",
        "Go back to the application and start signing in again.",
    )


async def continue_authorization(
    provider: Provider,
    request: Request,
    session: BrowserSession | None,
    params: list[tuple[str, str]],
    interaction: Interaction | None = None,
    interaction_id: str | None = None,
) -> Response:
    oauth_request = ProviderRequest("GET", provider.url("/authorize"), request.headers, params)
    end_user = await _session_user(provider, session)
    try:
        grant = provider.server.get_consent_grant(oauth_request, end_user=end_user)
    except OAuth2Error as error:
        return _error(provider, oauth_request, error)

    data = oauth_request.payload.data
    prompts = set(data.get("prompt", "").split())
    login_done = interaction is not None and interaction.login_done
    try:
        checked = request_checks.check(provider, data)
        needs_login = end_user is None or (
            not login_done
            and (
                not prompts.isdisjoint(request_checks.LOGIN_PROMPTS)
                or _too_old(end_user, data.get("max_age"))
                or (checked.hinted_subject not in (None, end_user.user.id))
            )
        )
        if needs_login and "none" in prompts:
            raise LoginRequiredError()
    except OAuth2Error as error:
        error.redirect_uri = grant.redirect_uri or oauth_request.payload.redirect_uri
        return _error(provider, oauth_request, error)
    if needs_login:
        return await _interact(provider, "/login", session, params, interaction, interaction_id, "login")
    assert end_user is not None

    requested = frozenset(oauth_request.scope.split())
    consented = await provider.state.consented_scopes(end_user.user.id, grant.client.client.uid)
    consent_done = interaction is not None and interaction.consent_done
    unproven = _identity_unproven(grant.client.client, oauth_request.payload.redirect_uri or "")
    if not consent_done and ("consent" in prompts or unproven or not requested <= consented):
        if "none" in prompts:
            refusal = ConsentRequiredError(redirect_uri=oauth_request.payload.redirect_uri)
            return _error(provider, oauth_request, refusal)
        return await _interact(provider, "/consent", session, params, interaction, interaction_id, "consent")

    # Two resumes of one interaction may race (a double click, two replicas): only the one that ends
    # it atomically issues a code.
    if interaction_id is not None and not await provider.state.finish_interaction(interaction_id):
        return expired_interaction(provider)
    sid = session.data.sid if session is not None else None
    issued_for = EndUser(end_user.user, end_user.auth_time, new_token(12), sid, checked.claims)
    response: Response = provider.server.create_authorization_response(
        oauth_request, grant_user=issued_for, grant=grant
    )
    # The grant left the code to store (storing is a coroutine, Authlib's hook is not): stored before
    # the redirect carrying it leaves.
    await provider.server.save_issued_code(oauth_request)
    if sid is not None:
        await provider.state.add_session_client(
            sid,
            end_user.user.id,
            grant.client.get_client_id(),
            provider.settings.session_ttl + EXPIRY_LOOKBACK,
            client_uid=grant.client.client.uid,
        )
    provider.metrics.authorizations.labels("code").inc()
    return _with_issuer(provider, response, oauth_request)


def deny(provider: Provider, request: Request, params: Iterable[tuple[str, str]]) -> Response:
    """The user refused on the consent page: ``access_denied`` to the client (RFC 6749 §4.1.2.1)."""
    oauth_request = ProviderRequest("GET", provider.url("/authorize"), request.headers, list(params))
    try:
        grant = provider.server.get_consent_grant(oauth_request, end_user=None)
    except OAuth2Error as error:
        return _error(provider, oauth_request, error)
    response: Response = provider.server.create_authorization_response(
        oauth_request, grant_user=None, grant=grant
    )
    provider.metrics.authorizations.labels("access_denied").inc()
    return _with_issuer(provider, response, oauth_request)


async def _session_user(provider: Provider, session: BrowserSession | None) -> EndUser | None:
    if session is None:
        return None
    data = session.data
    if data.user_id is None or data.auth_time is None:
        return None
    user = await provider.directory.find(data.user_id)
    return EndUser(user, data.auth_time, grant_id="", sid=data.sid) if user is not None else None


def _too_old(end_user: EndUser, max_age: str | None) -> bool:
    """OIDC Core §3.1.2.1 ``max_age``: re-authenticate when the last login is older than that."""
    if max_age is None:
        return False
    if not max_age.isdigit():
        raise InvalidRequestError("'max_age' must be a non-negative integer number of seconds.")
    return time.time() - end_user.auth_time > int(max_age)


async def _interact(
    provider: Provider,
    page: str,
    session: BrowserSession | None,
    params: list[tuple[str, str]],
    interaction: Interaction | None,
    interaction_id: str | None,
    outcome: str,
) -> Response:
    # A browser gets a session only once it has a valid request to sign in for: invalid requests
    # store nothing.
    session = session or await provider.sessions.start(Session(csrf_token=new_token(16)))
    if interaction is None or interaction_id is None:
        interaction_id = await provider.state.save_interaction(Interaction(dict(params), session.hash))
    provider.metrics.authorizations.labels(outcome).inc()
    response = RedirectResponse(provider.url(f"{page}?interaction={interaction_id}"), status_code=303)
    provider.sessions.set_cookie(session, response)
    return response


def _error(provider: Provider, oauth_request: ProviderRequest, error: OAuth2Error) -> Response:
    provider.metrics.authorizations.labels(error.error).inc()
    if error.redirect_uri is None:
        # No redirect URI we can trust yet: show the error, never redirect (RFC 6749 §4.1.2.1).
        return provider.pages.error(
            400, "This sign-in request cannot be completed", error.get_error_description(), error.error
        )
    error.state = oauth_request.payload.state
    response: Response = provider.server.handle_error_response(oauth_request, error)
    return _with_issuer(provider, response, oauth_request)


def _with_issuer(provider: Provider, response: Response, oauth_request: ProviderRequest) -> Response:
    """RFC 9207: every authorization response names its issuer, against mix-up attacks; in the
    response mode the client asked for (``form_post``: the OAuth 2.0 Form Post Response Mode)."""
    location = response.headers.get("location")
    if location:
        location = add_query(location, {"iss": provider.settings.issuer})
        if oauth_request.payload.data.get("response_mode") == request_checks.FORM_POST:
            return form_post_response(provider, location)
        response.headers["location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response
