"""The login page: the user proves who they are to the user directory.

Forms carry the session's CSRF token; failed logins are throttled per username and per client address
(counted in the state store, so every replica sees them); a successful login starts a new session id.
"""

from __future__ import annotations

import dataclasses
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.authorize import expired_interaction
from kubeoidc_provider.endpoints.form import read_page_form
from kubeoidc_provider.endpoints.interaction import InteractionView, load_interaction
from kubeoidc_provider.state import Session, new_token

MAX_FIELD_LENGTH = 256
#: Failed logins one address may make, in multiples of ``login_attempts`` (shared NATs, offices).
ADDRESS_ALLOWANCE = 4


async def login_page(request: Request) -> Response:
    provider = provider_of(request)
    view = await load_interaction(provider, request, request.query_params.get("interaction", ""))
    if view is None:
        return expired_interaction(provider)
    return _render(provider, view, username=view.interaction.params.get("login_hint", ""))


async def login_submit(request: Request) -> Response:
    provider = provider_of(request)
    form = await read_page_form(request)
    view = await load_interaction(provider, request, str(form.get("interaction", "")))
    if view is None:
        return expired_interaction(provider)
    if not provider.sessions.check_csrf(view.session, str(form.get("csrf_token", ""))):
        return provider.pages.error(403, "The form has expired", "Reload the sign-in page and try again.")
    username = str(form.get("username", ""))[:MAX_FIELD_LENGTH]
    password = str(form.get("password", ""))[:MAX_FIELD_LENGTH]

    by_user, by_address = _throttle_keys(username, request)
    if await provider.state.is_login_blocked(by_user) or await provider.state.is_login_blocked(by_address):
        provider.metrics.logins.labels("throttled").inc()
        message = "Too many failed sign-in attempts. Wait a few minutes, then try again."
        return _render(provider, view, username=username, error=message, status_code=429)
    # Password hashing is deliberately slow (argon2/bcrypt): keep it off the event loop.
    user = await run_in_threadpool(provider.users.authenticate, username, password)
    if user is None:
        provider.metrics.logins.labels("failed").inc()
        window, limit = provider.settings.login_window, provider.settings.login_attempts
        await provider.state.record_failed_login(by_user, window, limit)
        # An address gets more room than one user: several people may share it behind a NAT.
        await provider.state.record_failed_login(by_address, window, limit * ADDRESS_ALLOWANCE)
        error = "The username or password is incorrect."
        return _render(provider, view, username=username, error=error, status_code=401)

    provider.metrics.logins.labels("succeeded").inc()
    await provider.state.clear_failed_logins(by_user)
    old = view.session
    await provider.state.delete_session(old.id)
    # Signing in again as the same user keeps the session (and its sid, which the clients know); as
    # someone else ends the previous user's session with every client (back-channel logout).
    sid = old.data.sid if old.data.user_id == user.id and old.data.sid else new_token(16)
    if old.data.user_id not in (None, user.id):
        await provider.backchannel.session_ended(old.data.sid)
    now = int(time.time())
    session = await provider.sessions.start(
        Session(csrf_token=new_token(16), user_id=user.id, auth_time=now, sid=sid)
    )
    await provider.backchannel.session_started(sid, now + provider.settings.session_ttl)
    interaction = dataclasses.replace(view.interaction, session_hash=session.hash, login_done=True)
    await provider.state.update_interaction(view.interaction_id, interaction)
    response = RedirectResponse(
        provider.url(f"/authorize/resume?interaction={view.interaction_id}"), status_code=303
    )
    provider.sessions.set_cookie(session, response)
    return response


def _throttle_keys(username: str, request: Request) -> tuple[str, str]:
    """Failed logins are counted per username and per client address (behind a proxy: the forwarded one)."""
    address = request.client.host if request.client else "unknown"
    return f"user:{username}", f"address:{address}"


def _render(
    provider: Provider,
    view: InteractionView,
    *,
    username: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return provider.pages.render(
        "login.html",
        status_code,
        action=provider.url("/login"),
        interaction_id=view.interaction_id,
        csrf_token=view.session.data.csrf_token,
        client=view.client,
        username=username,
        error=error,
    )
