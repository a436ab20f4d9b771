"""The login page: the user proves who they are to the user directory or an identity source.

The page has the password form (static users and LDAP sources) and one button per upstream OpenID
Provider the client allows (:mod:`.upstream_login`). Forms carry the session's CSRF token; failed logins
are throttled per username and per client address (counted in the state store, so every replica sees
them); a successful login starts a new session id.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import kubeoidc_contract as contract
from kubeoidc_provider.context import Provider, provider_of
from kubeoidc_provider.endpoints.authorize import expired_interaction
from kubeoidc_provider.endpoints.form import read_page_form
from kubeoidc_provider.endpoints.interaction import InteractionView, load_interaction
from kubeoidc_provider.endpoints.signin import signed_in
from kubeoidc_provider.endpoints.upstream_login import redirect_upstream
from kubeoidc_provider.identity.directory import DirectoryUnavailable
from kubeoidc_provider.identity.upstream import UpstreamSource

logger = logging.getLogger(__name__)

MAX_FIELD_LENGTH = 256
#: Failed logins one address may make, in multiples of ``login_attempts`` (shared NATs, offices).
ADDRESS_ALLOWANCE = 4


async def login_page(request: Request) -> Response:
    provider = provider_of(request)
    view = await load_interaction(provider, request, request.query_params.get("interaction", ""))
    if view is None:
        return expired_interaction(provider)
    default = _default_upstream(provider, view)
    if default is not None:
        # The client's first source is an upstream OpenID Provider: no page, straight there.
        return await redirect_upstream(provider, view, default)
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
    if not await _reserve_attempt(provider, by_user, by_address):
        provider.metrics.logins.labels("throttled").inc()
        message = "Too many failed sign-in attempts. Wait a few minutes, then try again."
        return _render(provider, view, username=username, error=message, status_code=429)
    # Password hashing is deliberately slow (argon2/bcrypt) and LDAP blocks: keep both off the event loop.
    try:
        user = await run_in_threadpool(
            provider.directory.authenticate, username, password, view.client.identity_sources
        )
    except DirectoryUnavailable as down:
        await provider.state.release_login_attempt(by_user)
        await provider.state.release_login_attempt(by_address)
        provider.metrics.logins.labels("unavailable").inc()
        logger.warning("a password sign-in could not be checked: %s", down)
        message = "Your password cannot be checked right now. Try again in a few minutes."
        return _render(provider, view, username=username, error=message, status_code=503)
    if user is None:
        # Already counted, by the reservation.
        provider.metrics.logins.labels("failed").inc()
        error = "The username or password is incorrect."
        return _render(provider, view, username=username, error=error, status_code=401)

    provider.metrics.logins.labels("succeeded").inc()
    await provider.state.clear_failed_logins(by_user)
    # Only failures count against an address: many people may sign in from behind one.
    await provider.state.release_login_attempt(by_address)
    return await signed_in(provider, view, user)


async def _reserve_attempt(provider: Provider, by_user: str, by_address: str) -> bool:
    """Count this attempt against the user and the address; False when either is already at its limit
    (the attempt is then refused unchecked, and never takes the other's room). An address gets more
    room than one user: several people may share it."""
    window, limit = provider.settings.login_window, provider.settings.login_attempts
    if not await provider.state.reserve_login_attempt(by_user, window, limit):
        return False
    if not await provider.state.reserve_login_attempt(by_address, window, limit * ADDRESS_ALLOWANCE):
        await provider.state.release_login_attempt(by_user)
        return False
    return True


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
        upstreams=[
            (source.name, source.definition.display_name)
            for source in provider.directory.sources.upstreams(view.client.identity_sources or None)
        ],
        password_form=_password_form(provider, view),
        upstream_action=provider.url("/login/upstream"),
    )


def _default_upstream(provider: Provider, view: InteractionView) -> UpstreamSource | None:
    allowed = view.client.identity_sources
    source = provider.directory.sources.get(allowed[0]) if allowed else None
    return source if isinstance(source, UpstreamSource) else None


def _password_form(provider: Provider, view: InteractionView) -> bool:
    """The form is shown when the client allows the static users or an LDAP source."""
    allowed = view.client.identity_sources
    if not allowed or contract.LOCAL_SOURCE in allowed:
        return True
    return bool(provider.directory.sources.directories(allowed))
