"""The device verification page (RFC 8628 §3.3): a person enters the user code a device shows.

``GET /device`` shows the form (``verification_uri_complete`` fills the code in, and the person still
confirms it, RFC 8628 §5.4: a code sent by someone else must not be approved in one click). ``POST``
checks the code, then the request goes through the same login and consent pages as a browser sign-in;
the decision is recorded for the device, which receives its tokens at its next poll. Wrong codes are
counted per address and blocked like failed logins, so user codes cannot be guessed by brute force.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.device_codes import USER_CODE_LENGTH
from kubeoidc_provider.sessions import BrowserSession
from kubeoidc_provider.state import INTERACTION_TTL, Interaction, Session, new_token

#: Wrong user codes an address may enter per ``login_window``, in multiples of ``login_attempts``.
ADDRESS_ALLOWANCE = 2
_MAX_TYPED = 32
#: The double-submit CSRF cookie of a browser that has no session yet.
CSRF_COOKIE = "kubeoidc_device_csrf"


async def device_page(request: Request) -> Response:
    provider = provider_of(request)
    session = await provider.sessions.load(request)
    # Anyone may load this page: no session is stored for a visit, only a CSRF cookie is set (double
    # submit); the session starts once a valid code is entered.
    csrf_token = session.data.csrf_token if session is not None else new_token(16)
    typed = request.query_params.get("user_code", "")[:_MAX_TYPED]
    response = _render(provider, csrf_token, user_code=typed)
    if session is None:
        response.set_cookie(
            CSRF_COOKIE,
            csrf_token,
            max_age=INTERACTION_TTL,
            path=provider.settings.issuer_path or "/",
            secure=provider.settings.secure_cookies,
            httponly=True,
            samesite="lax",
        )
    return response


async def device_submit(request: Request) -> Response:
    provider = provider_of(request)
    form = await request.form()
    session = await provider.sessions.load(request)
    submitted = str(form.get("csrf_token", ""))
    if not _csrf_ok(provider, request, session, submitted):
        return provider.pages.error(403, "The form has expired", "Reload the page and try again.")
    typed = str(form.get("user_code", ""))[:_MAX_TYPED]
    throttle = f"device:{request.client.host if request.client else 'unknown'}"
    limit = provider.settings.login_attempts * ADDRESS_ALLOWANCE
    # Counted before the code is looked up, taken back when it is right: one atomic step per guess.
    if not await provider.state.reserve_login_attempt(throttle, provider.settings.login_window, limit):
        message = "Too many wrong codes. Wait a few minutes, then try again."
        return _render(provider, submitted, user_code=typed, error=message, status_code=429)
    found = await provider.server.devices.by_user_code(typed)
    client = provider.registry.get(found[1].client_id) if found is not None else None
    if found is None or client is None:
        message = "This code is not valid or has expired. Check it on your device and try again."
        return _render(provider, submitted, user_code=typed, error=message, status_code=400)
    await provider.state.release_login_attempt(throttle)
    device_key, device_request = found
    session = session or await provider.sessions.start(Session(csrf_token=new_token(16)))
    params = {"client_id": client.client_id, "scope": device_request.scope}
    interaction_id = await provider.state.save_interaction(
        Interaction(params, session.hash, device_key=device_key)
    )
    response = RedirectResponse(
        provider.url(f"/authorize/resume?interaction={interaction_id}"), status_code=303
    )
    provider.sessions.set_cookie(session, response)
    return response


def _csrf_ok(provider: Provider, request: Request, session: BrowserSession | None, submitted: str) -> bool:
    if session is not None:
        return provider.sessions.check_csrf(session, submitted)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie and submitted) and hmac.compare_digest(cookie.encode(), submitted.encode())


async def continue_device(
    provider: Provider, session: BrowserSession, interaction: Interaction, interaction_id: str
) -> Response:
    """The next step of a device request: login, then consent (always: RFC 8628 §5.4), then done."""
    assert interaction.device_key is not None
    device_request = await provider.server.devices.get(interaction.device_key)
    if device_request is None or device_request.expired:
        return _expired(provider)
    data = session.data
    user = provider.users.get(data.user_id) if data.user_id else None
    if user is None or data.auth_time is None:
        return RedirectResponse(provider.url(f"/login?interaction={interaction_id}"), status_code=303)
    if not interaction.consent_done:
        return RedirectResponse(provider.url(f"/consent?interaction={interaction_id}"), status_code=303)
    if not await provider.state.finish_interaction(interaction_id):
        return _expired(provider)
    if not await provider.server.devices.decide(
        interaction.device_key, user_id=user.id, auth_time=data.auth_time, approved=True
    ):
        return _expired(provider)
    provider.metrics.authorizations.labels("device").inc()
    return provider.pages.render("device_done.html", approved=True)


async def deny_device(provider: Provider, session: BrowserSession, interaction: Interaction) -> Response:
    """The user refused on the consent page: the device's next poll gets ``access_denied``."""
    assert interaction.device_key is not None
    data = session.data
    if data.user_id is not None:
        await provider.server.devices.decide(
            interaction.device_key, user_id=data.user_id, auth_time=data.auth_time or 0, approved=False
        )
    provider.metrics.authorizations.labels("access_denied").inc()
    return provider.pages.render("device_done.html", approved=False)


def _expired(provider: Provider) -> Response:
    return provider.pages.error(
        400, "This device code has expired", "Start again on your device to get a new code."
    )


def _render(
    provider: Provider,
    csrf_token: str,
    *,
    user_code: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return provider.pages.render(
        "device.html",
        status_code,
        action=provider.url("/device"),
        csrf_token=csrf_token,
        user_code=user_code,
        code_length=USER_CODE_LENGTH + 1,
        error=error,
    )
